// Conduit dashboard charts (uPlot, served from /static/uplot): messages per minute and queue
// depth over the last minutes, refreshed every few seconds from /api/charts.
// <figure data-chart="messages|queue|destinations" data-source="/api/charts?channel=adt"
//         [data-channel="adt"]>: without data-channel the overview sums every channel.
(function () {
  "use strict";
  var COLORS = {received: "#1f5fa8", sent: "#1b7f3b", filtered: "#8a93a0", errored: "#b3261e",
                failed: "#b3261e", queued: "#a86a00"};
  var PALETTE = ["#1f5fa8", "#a86a00", "#7b3fa0", "#1b7f3b", "#b3261e", "#0f7c8c", "#5d6470"];
  var KEYS = ["received", "sent", "filtered", "errored"];

  function sum(arrays, length) {
    var out = [];
    for (var i = 0; i < length; i++) {
      var total = null;
      arrays.forEach(function (a) { if (a[i] !== null && a[i] !== undefined) { total = (total || 0) + a[i]; } });
      out.push(total);
    }
    return out;
  }

  // [labels, colors, data] for one figure from the endpoint's answer
  function shape(kind, channel, answer) {
    var t = answer.t, names = Object.keys(answer.channels), labels = [], colors = [], data = [t];
    var chosen = channel ? [channel] : names;
    if (kind === "messages") {
      KEYS.forEach(function (key) {
        labels.push(key); colors.push(COLORS[key]);
        data.push(sum(chosen.map(function (n) { return answer.channels[n][key]; }), t.length));
      });
    } else if (kind === "queue") {
      chosen.forEach(function (n, i) {
        labels.push(channel ? "queued" : n);
        colors.push(channel ? COLORS.queued : PALETTE[i % PALETTE.length]);
        data.push(answer.channels[n].queued);
      });
    } else {
      var dests = answer.channels[channel].destinations;
      Object.keys(dests).forEach(function (d, i) {
        labels.push(d + " sent"); colors.push(PALETTE[(2 * i) % PALETTE.length]);
        data.push(dests[d].sent);
        labels.push(d + " failed"); colors.push(COLORS.failed);
        data.push(dests[d].failed);
      });
    }
    return [labels, colors, data];
  }

  function draw(figure) {
    var kind = figure.getAttribute("data-chart");
    var channel = figure.getAttribute("data-channel");
    var source = figure.getAttribute("data-source");
    var every = parseInt(figure.getAttribute("data-every") || "5000", 10);
    var holder = figure.querySelector(".chart") || figure;
    var plot = null, signature = null;

    function render(answer) {
      var shaped = shape(kind, channel, answer);
      var key = shaped[0].join("|");
      // for tests and curious people: how many points, and the first series' sum
      figure.setAttribute("data-points", String(answer.t.length));
      figure.setAttribute("data-total", String((shaped[2][1] || []).reduce(
        function (a, v) { return a + (v || 0); }, 0)));
      if (plot && key === signature) { plot.setData(shaped[2]); return; }
      if (plot) { plot.destroy(); }
      signature = key;
      var series = [{}];
      shaped[0].forEach(function (label, i) {
        series.push({label: label, stroke: shaped[1][i], width: 2,
                     dash: /failed$/.test(label) ? [6, 3] : undefined,
                     value: function (u, v) { return v === null ? "–" : (Math.round(v * 10) / 10).toString(); }});
      });
      plot = new window.uPlot({
        width: Math.max(280, holder.clientWidth || 600), height: 200, series: series,
        scales: {y: {range: function (u, min, max) { return [0, Math.max(1, max)]; }}},
        axes: [{}, {label: kind === "queue" ? "waiting" : answer.unit, size: 60}],
        legend: {live: true}
      }, shaped[2], holder);
      figure.setAttribute("data-ready", "");
    }

    function load() {
      if (document.hidden) { return; }
      fetch(source, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (answer) { if (answer) { render(answer); } })
        .catch(function () {});
    }
    load();
    window.setInterval(load, every);
    window.addEventListener("resize", function () {
      if (plot) { plot.setSize({width: Math.max(280, holder.clientWidth), height: 200}); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.uPlot) { return; }
    document.querySelectorAll("figure[data-chart]").forEach(draw);
  });
})();
