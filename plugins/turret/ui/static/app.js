// Draws every chart whose plotly spec sits in a <script type="application/json"> block, and submits the
// filter bar when the project or text field changes. No inline scripts: the page's CSP allows none.
(function () {
  "use strict";
  function draw(el) {
    var spec = JSON.parse(document.getElementById(el.dataset.chart).textContent);
    var config = {displaylogo: false, responsive: true};
    window.Plotly.newPlot(el, spec.data, spec.layout, config).then(function () {
      el.dataset.rendered = "true";
    });
  }
  document.querySelectorAll("[data-chart]").forEach(draw);
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () {
      var form = select.form;
      if (select.name === "project") {
        // Another project has other fields and values: keep only the project.
        form.querySelectorAll("select, input").forEach(function (input) {
          if (input !== select && input.name) { input.disabled = true; }
        });
      }
      form.submit();
    });
  });
})();
