// Draw one request's records on a time axis: one lane per log file, one mark per record,
// coloured by level, with the slow threshold marked. The data is read from the records list
// the server rendered (data-* attributes); every text goes in through textContent, never
// through HTML, so what the logs hold is shown and never run.
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var GUTTER = 104; // room for the lane names (a task's: task:<8 characters>)
  var PAD = 16;
  var AXIS = 26;
  var LANE = 30;

  function node(name, attrs, text) {
    var element = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (key) {
      element.setAttribute(key, String(attrs[key]));
    });
    if (text !== undefined) {
      element.textContent = text;
    }
    return element;
  }

  function label(ms) {
    if (ms >= 1000) {
      return (ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 2).replace(/\.?0+$/, "") + " s";
    }
    return (ms < 10 && ms % 1 !== 0 ? ms.toFixed(1) : Math.round(ms)) + " ms";
  }

  function niceStep(span) {
    var rough = span / 6;
    var power = Math.pow(10, Math.floor(Math.log10(rough)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * power >= rough) {
        return steps[i] * power;
      }
    }
    return 10 * power;
  }

  function highlight(index, on) {
    var item = document.getElementById("record-" + index);
    if (item) {
      item.classList.toggle("highlight", on);
    }
    var mark = document.querySelector('.timeline .mark[data-index="' + index + '"]');
    if (mark) {
      mark.classList.toggle("highlight", on);
    }
  }

  function draw(figure) {
    var records = Array.prototype.slice.call(document.querySelectorAll("ol.records > li.record"));
    var lanes = (figure.dataset.lanes || "").split(" ").filter(Boolean);
    var span = Math.max(parseFloat(figure.dataset.spanMs) || 0, 1);
    var threshold = parseFloat(figure.dataset.thresholdMs) || 0;
    // Stretch the axis to show the threshold when it is near; far beyond, point at it.
    var thresholdOnAxis = threshold > 0 && threshold <= span * 1.5;
    var end = thresholdOnAxis ? Math.max(span, threshold) : span;
    var style = window.getComputedStyle(figure);
    var inner = figure.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    var width = Math.max(Math.floor(inner) || 0, 480);
    var height = AXIS + lanes.length * LANE + PAD;
    var plot = width - GUTTER - PAD;
    function x(ms) {
      return GUTTER + (Math.min(Math.max(ms, 0), end) / end) * plot;
    }

    var old = figure.querySelector("svg");
    if (old) {
      old.remove();
    }
    var svg = node("svg", {
      class: "timeline-svg",
      viewBox: "0 0 " + width + " " + height,
      width: width,
      height: height,
      role: "img",
      "aria-label": "Timeline of " + records.length + " records",
    });

    lanes.forEach(function (lane, i) {
      var top = AXIS + i * LANE;
      svg.appendChild(node("rect", { class: "lane lane-" + (i % 2), x: 0, y: top, width: width, height: LANE }));
      svg.appendChild(node("text", { class: "lane-name", x: 8, y: top + LANE / 2 + 4 }, lane));
    });

    var step = niceStep(end);
    for (var t = 0; t <= end + step / 1000; t += step) {
      svg.appendChild(node("line", { class: "tick", x1: x(t), x2: x(t), y1: AXIS - 6, y2: height - PAD }));
      svg.appendChild(node("text", { class: "tick-label", x: x(t), y: AXIS - 10 }, label(t)));
    }

    // The request itself: a band from its first to its last record.
    svg.appendChild(node("rect", { class: "extent", x: x(0), y: AXIS - 3, width: Math.max(x(span) - x(0), 1), height: 3 }));

    if (threshold > 0) {
      if (thresholdOnAxis) {
        svg.appendChild(node("line", { class: "threshold", x1: x(threshold), x2: x(threshold), y1: AXIS - 4, y2: height - PAD }));
        svg.appendChild(node("text", { class: "threshold-label", x: x(threshold) - 4, y: height - 4 }, "slow \u2265 " + label(threshold)));
      } else {
        svg.appendChild(node("text", { class: "threshold-label far", x: width - PAD, y: height - 4 }, "slow threshold " + label(threshold) + " \u2192"));
      }
    }

    var marks = node("g", { class: "marks" });
    var last = {};
    records.forEach(function (item) {
      var index = item.id.replace("record-", "");
      var offset = parseFloat(item.dataset.offsetMs) || 0;
      var lane = Math.max(lanes.indexOf(item.dataset.lane), 0);
      var mx = x(offset);
      // Records a few pixels apart in one lane are staggered so that each stays visible.
      var key = "l" + lane;
      var nudge = last[key] !== undefined && mx - last[key].x < 5 ? (last[key].n + 1) % 3 : 0;
      last[key] = { x: mx, n: nudge };
      var top = AXIS + lane * LANE + 5 + nudge * 6;
      var mark = node("rect", {
        class: "mark level-" + (item.dataset.level || "other"),
        "data-index": index,
        x: mx - 2,
        y: top,
        width: 4,
        height: LANE - 16,
        rx: 1,
        tabindex: 0,
      });
      var line = item.querySelector(".line");
      mark.appendChild(node("title", {}, "+" + offset.toFixed(1) + " ms  " + (line ? line.textContent.replace(/\s+/g, " ").trim() : "")));
      mark.addEventListener("click", function () {
        item.scrollIntoView({ block: "center" });
        highlight(index, true);
        window.setTimeout(function () {
          highlight(index, false);
        }, 1500);
      });
      mark.addEventListener("mouseenter", function () {
        highlight(index, true);
      });
      mark.addEventListener("mouseleave", function () {
        highlight(index, false);
      });
      if (!item.dataset.bound) {
        item.dataset.bound = "1";
        item.addEventListener("mouseenter", function () {
          highlight(index, true);
        });
        item.addEventListener("mouseleave", function () {
          highlight(index, false);
        });
      }
      marks.appendChild(mark);
    });
    svg.appendChild(marks);
    figure.appendChild(svg);
    figure.dataset.marks = String(records.length);
    figure.classList.add("drawn");
  }

  function start() {
    var figure = document.getElementById("timeline");
    if (!figure) {
      return;
    }
    draw(figure);
    var pending = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(pending);
      pending = window.setTimeout(function () {
        draw(figure);
      }, 150);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
