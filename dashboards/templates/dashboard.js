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
    var order = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", order);
    orderRows(table);
  }

  /* Puts the rows in the order of the column whose header has aria-sort (none: as they are). */
  function orderRows(table) {
    var head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    var th = head && head.querySelector("th[aria-sort]");
    if (!th) return;
    var index = Array.prototype.indexOf.call(head.cells, th);
    var body = table.tBodies[0];
    var numeric = th.getAttribute("data-type") === "num";
    var sign = th.getAttribute("aria-sort") === "ascending" ? 1 : -1;
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

  /* The scorecard's rows are data (<script id="pv-scorecard-data">: every provider-year under every policy
     profile); the table holds only the rows the filters select, built again when a filter changes. */
  function cell(text, cls, sort, title, bench) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    if (sort !== undefined && sort !== null) td.setAttribute("data-sort", String(sort));
    if (title) td.title = title;
    if (bench) td.setAttribute("data-bench", bench);
    td.textContent = text;
    return td;
  }

  function linkCell(text, href, cls) {
    var td = cell("", cls), a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    td.appendChild(a);
    return td;
  }

  function scorecardRow(data, row) {
    var agb = row[1], provider = data.providers[agb] || ["", "", ""];
    var tr = document.createElement("tr");
    tr.appendChild(linkCell(agb, provider[2]));
    tr.appendChild(linkCell(provider[0] || agb, provider[2], "pv-name"));
    tr.appendChild(cell(provider[1]));
    tr.appendChild(cell(String(row[2]), "pv-n", row[2]));
    tr.appendChild(cell(String(row[3]), row[3] ? "miss pv-n" : "pv-n", row[3]));
    row[4].forEach(function (c, i) { tr.appendChild(cell(c[2], c[0], c[1], c[3], data.benchmarks[i])); });
    return tr;
  }

  function applyFilters(table, data) {
    function value(id) { var el = document.getElementById(id); return el ? el.value : ""; }
    var policy = data.policies.indexOf(value("pv-policy"));
    var year = value("pv-year"), type = value("pv-type"), q = value("pv-search").trim().toLowerCase();
    var missing = document.getElementById("pv-missing");
    var onlyMissing = missing && missing.checked;
    var counts = {}, shown = 0, body = document.createElement("tbody");
    data.rows.forEach(function (row) {
      var provider = data.providers[row[1]] || ["", ""];
      var ok = (policy < 0 || row[0] === policy) && (!year || String(row[2]) === year)
        && (!type || provider[1] === type) && (!onlyMissing || row[3] > 0)
        && (!q || (row[1] + " " + provider[0]).toLowerCase().indexOf(q) >= 0);
      if (!ok) return;
      shown += 1;
      body.appendChild(scorecardRow(data, row));
      row[4].forEach(function (c, i) {
        var b = data.benchmarks[i], classes = " " + c[0] + " ";
        counts[b] = counts[b] || { miss: 0, evaluated: 0 };
        if (classes.indexOf(" miss ") >= 0) counts[b].miss += 1;
        if (classes.indexOf(" miss ") >= 0 || classes.indexOf(" ok ") >= 0) counts[b].evaluated += 1;
      });
    });
    table.replaceChild(body, table.tBodies[0]);
    orderRows(table);
    Array.prototype.forEach.call(table.querySelectorAll("tfoot td[data-bench]"), function (td) {
      var c = counts[td.dataset.bench] || { miss: 0, evaluated: 0 };
      td.textContent = c.miss + " of " + c.evaluated;
    });
    var label = document.getElementById("pv-shown");
    if (label) label.textContent = String(shown);
  }

  function setupFilters() {
    var table = document.getElementById("pv-scorecard");
    var source = document.getElementById("pv-scorecard-data");
    if (!table || !source) return;
    var data = JSON.parse(source.textContent);
    ["pv-year", "pv-type", "pv-policy", "pv-search", "pv-missing"].forEach(function (id) {
      var el = document.getElementById(id);
      if (el) el.addEventListener(el.tagName === "INPUT" && el.type === "text" ? "input" : "change", function () { applyFilters(table, data); });
    });
    applyFilters(table, data);
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
