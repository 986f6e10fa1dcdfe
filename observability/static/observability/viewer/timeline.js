// Draw one request's records on a time axis: one lane per log file, one mark per record,
// coloured by level, with the slow threshold marked. The data is read from the records list
// the server rendered (data-* attributes); every text goes in through textContent, never
// through HTML, so what the logs hold is shown and never run.
import { drawing, node } from "./svg.js";

(function () {
  "use strict";

  var GUTTER = 104; // room for the lane names (a task's: task:<8 characters>)
  var PAD = 16;
  var AXIS = 26;
  var LANE = 30;

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

    var svg = drawing(figure, "timeline-svg", width, height, "Timeline of " + records.length + " records");

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

  // The waterfall: the request as one bar, then a row per span, call or query shape, each
  // run a bar on the same axis. The rows are the list the server rendered (data-segments:
  // "start:duration ..." in ms); a click or a hover shows the row's records below.
  var ROW = 22;
  var LABEL = 260;

  function showRecords(indexes, on) {
    indexes.forEach(function (index) {
      var item = document.getElementById("record-" + index);
      if (item) {
        item.classList.toggle("highlight", on);
      }
    });
  }

  function drawWaterfall(figure) {
    var items = Array.prototype.slice.call(figure.querySelectorAll("ol.waterfall-rows > li.bar"));
    var rows = items.map(function (item) {
      var segments = (item.dataset.segments || "").split(" ").filter(Boolean).map(function (pair) {
        var parts = pair.split(":");
        return [parseFloat(parts[0]) || 0, parseFloat(parts[1]) || 0];
      });
      return {
        item: item,
        kind: item.dataset.kind || "span",
        depth: parseInt(item.dataset.depth, 10) || 1,
        segments: segments,
        records: (item.dataset.records || "").split(" ").filter(Boolean),
        text: item.textContent.replace(/\s+/g, " ").trim(),
      };
    });
    var end = Math.max(parseFloat(figure.dataset.spanMs) || 0, 1);
    rows.forEach(function (row) {
      row.segments.forEach(function (s) {
        end = Math.max(end, s[0] + s[1]);
      });
    });
    var style = window.getComputedStyle(figure);
    var inner = figure.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    var width = Math.max(Math.floor(inner) || 0, 640);
    var plot = width - LABEL - PAD;
    var height = AXIS + (rows.length + 1) * ROW + PAD;
    function x(ms) {
      return LABEL + (Math.min(Math.max(ms, 0), end) / end) * plot;
    }
    var old = figure.querySelector("svg");
    if (old) {
      old.remove();
    }
    var svg = node("svg", {
      class: "waterfall-svg",
      viewBox: "0 0 " + width + " " + height,
      width: width,
      height: height,
      role: "img",
      "aria-label": "Waterfall of " + rows.length + " spans, calls and queries",
    });
    var step = niceStep(end);
    for (var t = 0; t <= end + step / 1000; t += step) {
      svg.appendChild(node("line", { class: "tick", x1: x(t), x2: x(t), y1: AXIS - 6, y2: height - PAD }));
      svg.appendChild(node("text", { class: "tick-label", x: x(t), y: AXIS - 10 }, label(t)));
    }
    svg.appendChild(node("text", { class: "row-name", x: 8, y: AXIS + ROW / 2 + 4 }, "request"));
    svg.appendChild(node("rect", { class: "bar-rect kind-request", x: x(0), y: AXIS + 4, width: Math.max(x(end) - x(0), 2), height: ROW - 8 }));
    rows.forEach(function (row, i) {
      var top = AXIS + (i + 1) * ROW;
      var group = node("g", { class: "bar-row kind-" + row.kind, "data-row": i, tabindex: 0 });
      group.appendChild(node("rect", { class: "row-band row-" + (i % 2), x: 0, y: top, width: width, height: ROW }));
      var name = row.item.querySelector(".bar-label");
      group.appendChild(node("text", { class: "row-name", x: 8 + (row.depth - 1) * 12, y: top + ROW / 2 + 4 }, name ? name.textContent : row.kind));
      row.segments.forEach(function (s) {
        group.appendChild(node("rect", {
          class: "bar-rect kind-" + row.kind + (row.item.classList.contains("failed") ? " failed" : ""),
          x: x(s[0]),
          y: top + 4,
          width: Math.max(x(s[0] + s[1]) - x(s[0]), 2),
          height: ROW - 8,
        }));
      });
      group.appendChild(node("title", {}, row.text));
      group.addEventListener("mouseenter", function () {
        showRecords(row.records, true);
      });
      group.addEventListener("mouseleave", function () {
        showRecords(row.records, false);
      });
      group.addEventListener("click", function () {
        var first = document.getElementById("record-" + row.records[0]);
        if (first) {
          first.scrollIntoView({ block: "center" });
        }
        showRecords(row.records, true);
        window.setTimeout(function () {
          showRecords(row.records, false);
        }, 1500);
      });
      svg.appendChild(group);
    });
    figure.insertBefore(svg, figure.querySelector("ol.waterfall-rows"));
    figure.dataset.bars = String(rows.length);
    figure.classList.add("drawn");
  }

  function start() {
    var figure = document.getElementById("timeline");
    var fall = document.getElementById("waterfall");
    if (!figure && !fall) {
      return;
    }
    function redraw() {
      if (figure) {
        draw(figure);
      }
      if (fall) {
        drawWaterfall(fall);
      }
    }
    redraw();
    var pending = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(pending);
      pending = window.setTimeout(redraw, 150);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
