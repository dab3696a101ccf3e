// Colours and lengths that a template computes (a class's colour, a bar's share) come as
// data-style-* attributes and are applied here through the CSSOM: the Content-Security-Policy
// refuses style attributes in markup but not element.style. Only these properties are set,
// and a value the browser cannot parse as one is ignored by it.
(function () {
  "use strict";
  var PROPERTIES = {
    styleBg: "background",
    styleBorder: "borderColor",
    styleColor: "color",
    styleGrow: "flexGrow",
  };
  var SELECTOR =
    "[data-style-bg],[data-style-border],[data-style-color],[data-style-grow],[data-style-width]";

  function apply(root) {
    root.querySelectorAll(SELECTOR).forEach(function (el) {
      Object.keys(PROPERTIES).forEach(function (key) {
        if (el.dataset[key] !== undefined) {
          el.style[PROPERTIES[key]] = el.dataset[key];
        }
      });
      if (el.dataset.styleWidth !== undefined) {
        // A percentage of the parent, clamped: bars never overflow their track.
        var percent = Math.min(100, Math.max(0, parseFloat(el.dataset.styleWidth) || 0));
        el.style.width = percent + "%";
      }
    });
  }

  apply(document);
  window.histocrowdDataStyles = apply;
})();
