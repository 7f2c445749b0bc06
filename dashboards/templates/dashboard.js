/* praktijkvariatie dashboards: draws the Plotly figures of a page (their JSON sits in
   <script type="application/json" id="<div id>-data">) and makes tables sortable and filterable.
   When every figure is drawn, <body data-plots-rendered="N"> is set; failures go to data-render-errors. */
var PV = (function () {
  "use strict";

  function markError(message) {
    var el = document.body || document.documentElement;
    el.dataset.renderErrors = (el.dataset.renderErrors ? el.dataset.renderErrors + " | " : "") + String(message).slice(0, 300);
  }

  function drawFigure(div) {
    var spec = document.getElementById(div.id + "-data");
    var fig = JSON.parse(spec.textContent);
    var config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
    return Plotly.newPlot(div, fig.data, fig.layout, config).then(function (gd) {
      gd.on("plotly_click", function (ev) {
        var p = ev && ev.points && ev.points[0];
        if (p && p.data && p.data.meta === "pv-link" && p.customdata && p.customdata[0]) {
          window.location.href = p.customdata[0];
        }
      });
      return gd;
    });
  }

  /* A preview (#preview) is a picture of the first screen: figures are drawn one after another until the next
     one starts below it, so that a preview does not wait for charts nobody sees. */
  function drawFiguresOnFirstScreen(divs) {
    var drawn = 0;
    function next() {
      if (drawn === divs.length || divs[drawn].getBoundingClientRect().top >= window.innerHeight) {
        return Promise.resolve(drawn);
      }
      return drawFigure(divs[drawn]).then(function () { drawn += 1; return next(); });
    }
    return next();
  }

  function renderFigures() {
    var divs = Array.prototype.slice.call(document.querySelectorAll("div.pv-plot"));
    if (!divs.length) { document.body.dataset.plotsRendered = "0"; return; }
    if (!window.Plotly) { markError("plotly.min.js did not load"); return; }
    var done = document.documentElement.classList.contains("pv-preview")
      ? drawFiguresOnFirstScreen(divs)
      : Promise.all(divs.map(drawFigure)).then(function (jobs) { return jobs.length; });
    done.then(function (count) {
      document.body.dataset.plotsRendered = String(count);
    }, function (err) { markError(err && err.message ? err.message : err); });
  }

  function cellKey(row, index) {
    var cell = row.cells[index];
    if (!cell) return "";
    var key = cell.getAttribute("data-sort");
    return key === null ? cell.textContent.trim().toLowerCase() : key;
  }

  function sortTable(table, index, th) {
    var body = table.tBodies[0];
    var numeric = th.getAttribute("data-type") === "num";
    var order = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", order);
    var sign = order === "ascending" ? 1 : -1;
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellKey(a, index), y = cellKey(b, index);
      if (numeric) {
        var fx = x === "" ? NaN : parseFloat(x), fy = y === "" ? NaN : parseFloat(y);
        if (isNaN(fx) && isNaN(fy)) return 0;
        if (isNaN(fx)) return 1;   /* empty values last in both directions */
        if (isNaN(fy)) return -1;
        return sign * (fx - fy);
      }
      return sign * x.localeCompare(y);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  function makeSortable(table) {
    var head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    if (!head) return;
    Array.prototype.forEach.call(head.cells, function (th, index) {
      th.addEventListener("click", function () { sortTable(table, index, th); });
    });
  }

  function applyFilters(table) {
    var year = document.getElementById("pv-year");
    var type = document.getElementById("pv-type");
    var policy = document.getElementById("pv-policy");
    var search = document.getElementById("pv-search");
    var onlyMissing = document.getElementById("pv-missing");
    var q = search ? search.value.trim().toLowerCase() : "";
    var shown = 0;
    var counts = {};
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var ok = (!policy || !row.dataset.policy || row.dataset.policy === policy.value)
        && (!year || !year.value || row.dataset.year === year.value)
        && (!type || !type.value || row.dataset.type === type.value)
        && (!q || row.dataset.search.indexOf(q) >= 0)
        && (!onlyMissing || !onlyMissing.checked || parseInt(row.dataset.missed || "0", 10) > 0);
      row.hidden = !ok;
      if (ok) {
        shown += 1;
        Array.prototype.forEach.call(row.querySelectorAll("td[data-bench]"), function (td) {
          var b = td.dataset.bench;
          counts[b] = counts[b] || { miss: 0, evaluated: 0 };
          if (td.classList.contains("miss")) counts[b].miss += 1;
          if (td.classList.contains("miss") || td.classList.contains("ok")) counts[b].evaluated += 1;
        });
      }
    });
    Array.prototype.forEach.call(table.querySelectorAll("tfoot td[data-bench]"), function (td) {
      var c = counts[td.dataset.bench] || { miss: 0, evaluated: 0 };
      td.textContent = c.miss + " of " + c.evaluated;
    });
    var label = document.getElementById("pv-shown");
    if (label) label.textContent = String(shown);
  }

  function setupFilters() {
    var table = document.getElementById("pv-scorecard");
    if (!table) return;
    ["pv-year", "pv-type", "pv-policy", "pv-search", "pv-missing"].forEach(function (id) {
      var el = document.getElementById(id);
      if (el) el.addEventListener(el.tagName === "INPUT" && el.type === "text" ? "input" : "change", function () { applyFilters(table); });
    });
    applyFilters(table);
  }

  function start() {
    try {
      Array.prototype.forEach.call(document.querySelectorAll("table.pv-sortable"), makeSortable);
      setupFilters();
      renderFigures();
    } catch (err) {
      markError(err && err.message ? err.message : err);
    }
  }

  return { start: start };
})();
