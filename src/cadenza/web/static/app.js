/* Cadenza dashboard: live updates, charts and focus after a form answers.
 * No inline script anywhere: pages pass data in data-* attributes and JSON blocks. */
(function () {
  "use strict";

  var REFRESH_DELAY_MS = 400;

  /* One EventSource per page on the dashboard's /live feed (the catalogue's
   * stream_run_events). A burst of events becomes one refresh of the page's live
   * parts, which listen for "cadenza:live" on the body. */
  function startLive() {
    var url = document.body.dataset.live;
    if (!url || !window.EventSource) {
      return;
    }
    var source = new EventSource(url);
    var pending = null;
    var status = document.getElementById("live-state");
    function refresh() {
      pending = null;
      document.body.dispatchEvent(new CustomEvent("cadenza:live", { bubbles: true }));
    }
    function onEvent(event) {
      if (status) {
        status.textContent = event.type === "run" ? "A new run arrived." : "The schedule changed.";
      }
      if (pending === null) {
        pending = window.setTimeout(refresh, REFRESH_DELAY_MS);
      }
    }
    source.addEventListener("run", onEvent);
    source.addEventListener("schedule_change", onEvent);
    source.addEventListener("open", function () {
      document.body.classList.add("is-live");
    });
    source.addEventListener("error", function () {
      document.body.classList.remove("is-live");
    });
  }

  function cssColor(element, name, fallback) {
    var value = window.getComputedStyle(element).getPropertyValue(name).trim();
    return value || fallback;
  }

  /* Cadence and duration over time (uPlot), from the JSON block each chart names. */
  function drawChart(element) {
    var block = document.getElementById(element.dataset.source);
    if (!block || !window.uPlot) {
      return;
    }
    var data = JSON.parse(block.textContent);
    var values = data[element.dataset.chart];
    var old = element.querySelector(".uplot");
    if (old) {
      old.remove();
    }
    if (!data.t || data.t.length < 2) {
      return;
    }
    var stroke = cssColor(element, "--chart-line", "#3565c9");
    var axis = cssColor(element, "--chart-axis", "#666");
    var options = {
      width: Math.max(240, element.clientWidth - 4),
      height: 150,
      legend: { show: false },
      scales: { x: { time: true } },
      axes: [
        { stroke: axis, grid: { stroke: "rgba(128,128,128,0.15)" } },
        { stroke: axis, size: 56, grid: { stroke: "rgba(128,128,128,0.15)" } }
      ],
      series: [
        {},
        { label: element.dataset.chart, stroke: stroke, width: 1.5, points: { show: true, size: 4 } }
      ]
    };
    new window.uPlot(options, [data.t, values], element);
  }

  function drawCharts(root) {
    if (!root || !root.querySelectorAll) {
      return;
    }
    var charts = root.matches && root.matches("[data-chart]") ? [root] : [];
    root.querySelectorAll("[data-chart]").forEach(function (chart) {
      charts.push(chart);
    });
    charts.forEach(drawChart);
  }

  /* After a control answers, put the focus where a keyboard user needs it: the
   * first field with a problem, else the form's note. */
  function focusAnswer(event) {
    var source = event.detail && event.detail.elt;
    if (!source || !source.id) {
      return;
    }
    var form = document.getElementById(source.id);
    if (!form || form.tagName !== "FORM") {
      return;
    }
    var target = form.querySelector("[aria-invalid='true'], .form-errors, .note, .secret input");
    if (target) {
      if (!target.hasAttribute("tabindex") && !/INPUT|SELECT|TEXTAREA/.test(target.tagName)) {
        target.setAttribute("tabindex", "-1");
      }
      target.focus();
    }
  }

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(function () {
      drawCharts(document.body);
    }, 200);
  });

  document.addEventListener("DOMContentLoaded", function () {
    startLive();
    if (window.htmx) {
      window.htmx.onLoad(drawCharts);
      document.body.addEventListener("htmx:afterSettle", focusAnswer);
    } else {
      drawCharts(document.body);
    }
  });
})();
