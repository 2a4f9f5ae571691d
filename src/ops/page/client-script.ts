/**
 * The page's only script (served as /assets/page.js): draws the three charts with uPlot (served from the uplot
 * package, /assets/uplot.iife.min.js) from the series the server embedded as JSON. Kept as a string here so that the
 * TypeScript build ships it with the server (no bundler, no CDN).
 */
export const PAGE_SCRIPT = `(function () {
  'use strict';
  var el = document.getElementById('series');
  if (!el || typeof uPlot === 'undefined') return;
  var s = JSON.parse(el.textContent);
  var ms = function (u, v) { return v.map(function (x) { return x == null ? '' : x < 1000 ? Math.round(x) + ' ms' : (x / 1000).toFixed(1) + ' s'; }); };
  var age = function (u, v) { return v.map(function (x) { return x == null ? '' : x < 120 ? Math.round(x) + 's' : x < 7200 ? Math.round(x / 60) + 'm' : (x / 3600).toFixed(1) + 'h'; }); };
  function chart(id, series, data, axes) {
    var target = document.getElementById(id);
    if (!target) return;
    var width = Math.max(320, target.clientWidth || 440);
    var opts = {
      width: width, height: 210,
      scales: { x: { time: true, min: s.from, max: s.to } },
      series: [{}].concat(series),
      axes: [{}].concat(axes),
      legend: { live: true },
    };
    new uPlot(opts, [s.at].concat(data), target);
  }
  chart('chart-depth',
    [{ label: 'pending', stroke: '#2f6fdf', fill: 'rgba(47,111,223,0.12)', scale: 'n' },
     { label: 'oldest pending', stroke: '#b26b00', scale: 'age', value: function (u, v) { return v == null ? '-' : age(u, [v])[0]; } }],
    [s.pending, s.oldest],
    [{ scale: 'n' }, { scale: 'age', side: 1, grid: { show: false }, values: age }]);
  chart('chart-lag',
    [{ label: 'p50', stroke: '#1a7f4b', scale: 'ms', value: function (u, v) { return v == null ? '-' : ms(u, [v])[0]; } },
     { label: 'p99', stroke: '#c0392b', scale: 'ms', value: function (u, v) { return v == null ? '-' : ms(u, [v])[0]; } }],
    [s.p50, s.p99],
    [{ scale: 'ms', values: ms }]);
  chart('chart-applied',
    [{ label: 'applied / min', stroke: '#6a4fd0', fill: 'rgba(106,79,208,0.15)', scale: 'n' }],
    [s.applied],
    [{ scale: 'n' }]);
})();
`;
