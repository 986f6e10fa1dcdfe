// Draw the overview's chart: requests, errors and slow requests a minute, one panel each on a
// shared time axis (UTC). The numbers come from the figure's data-* attributes (numbers only,
// rendered by the server); every text goes in through textContent, never through HTML.
import { drawing, node } from "./svg.js";

(function () {
  "use strict";

  var GUTTER = 56; // room for each panel's name and its largest value
  var PAD = 12;
  var AXIS = 22;
  var PANEL = 70;
  var GAP = 10;
  var SERIES = [
    { key: "requests", name: "requests" },
    { key: "errors", name: "errors" },
    { key: "slow", name: "slow" },
  ];

  function numbers(text) {
    return (text || "").split(",").filter(function (part) {
      return part !== "";
    }).map(function (part) {
      var value = parseFloat(part);
      return isFinite(value) && value > 0 ? value : 0;
    });
  }

  function clock(ms) {
    var when = new Date(ms);
    var hh = String(when.getUTCHours()).padStart(2, "0");
    var mm = String(when.getUTCMinutes()).padStart(2, "0");
    return hh + ":" + mm;
  }

  function shown(value) {
    return value >= 10 || value % 1 === 0 ? String(Math.round(value)) : value.toFixed(1);
  }

  function draw(figure) {
    var data = {};
    SERIES.forEach(function (series) {
      data[series.key] = numbers(figure.dataset[series.key]);
    });
    var count = data.requests.length;
    if (!count) {
      return;
    }
    var startMs = parseFloat(figure.dataset.startMs) || 0;
    var stepMs = parseFloat(figure.dataset.stepMs) || 60000;
    var covered = Math.min(Math.max(parseInt(figure.dataset.covered, 10) || 0, 0), count);
    var style = window.getComputedStyle(figure);
    var inner = figure.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    var width = Math.max(Math.floor(inner) || 0, 480);
    var height = SERIES.length * (PANEL + GAP) + AXIS;
    var plot = width - GUTTER - PAD;
    var slot = plot / count;
    function x(i) {
      return GUTTER + i * slot;
    }

    var svg = drawing(figure, "overview-svg", width, height, "Requests, errors and slow requests per minute over " + count + " minutes");

    SERIES.forEach(function (series, n) {
      var values = data[series.key];
      var top = n * (PANEL + GAP);
      var peak = Math.max.apply(null, values.concat([0]));
      var max = Math.max(peak, 1);
      var group = node("g", { class: "panel panel-" + series.key });
      group.appendChild(node("rect", { class: "panel-back", x: GUTTER, y: top, width: plot, height: PANEL }));
      if (covered > 0) {
        group.appendChild(node("rect", { class: "unread", x: GUTTER, y: top, width: x(covered) - GUTTER, height: PANEL }));
      }
      group.appendChild(node("text", { class: "panel-name", x: 4, y: top + 14 }, series.name));
      group.appendChild(node("text", { class: "panel-max", x: 4, y: top + 30 }, "max " + shown(peak)));
      function y(value) {
        return top + PANEL - (value / max) * (PANEL - 4);
      }
      if (count <= 180) {
        values.forEach(function (value, i) {
          if (value <= 0) {
            return;
          }
          var bar = node("rect", {
            class: "bar series-" + series.key,
            x: x(i) + Math.min(1, slot / 4),
            y: y(value),
            width: Math.max(slot - Math.min(2, slot / 2), 0.5),
            height: top + PANEL - y(value),
          });
          bar.appendChild(node("title", {}, clock(startMs + i * stepMs) + " UTC  " + shown(value) + " " + series.name));
          group.appendChild(bar);
        });
      } else {
        var path = "M" + x(0) + " " + (top + PANEL);
        values.forEach(function (value, i) {
          path += " L" + x(i).toFixed(1) + " " + y(value).toFixed(1) + " L" + x(i + 1).toFixed(1) + " " + y(value).toFixed(1);
        });
        path += " L" + x(count) + " " + (top + PANEL) + " Z";
        group.appendChild(node("path", { class: "area series-" + series.key, d: path }));
      }
      svg.appendChild(group);
    });

    // The time axis: a label every 10 minutes for an hour, every 2 hours for a day.
    var every = count <= 60 ? 10 : count <= 360 ? 30 : 120;
    var axisTop = SERIES.length * (PANEL + GAP);
    for (var i = 0; i <= count; i++) {
      var at = startMs + i * stepMs;
      if (Math.round(at / stepMs) % every !== 0) {
        continue;
      }
      svg.appendChild(node("line", { class: "tick", x1: x(i), x2: x(i), y1: 0, y2: axisTop }));
      svg.appendChild(node("text", { class: "tick-label", x: x(i), y: axisTop + 14 }, clock(at)));
    }
    figure.appendChild(svg);
    figure.classList.add("drawn");
  }

  function start() {
    var figure = document.getElementById("overview-chart");
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
