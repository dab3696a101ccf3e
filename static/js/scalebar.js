// A scale bar for OpenSeadragon from the slide's microns per pixel (no plugin needed).
(function () {
  "use strict";
  var NICE = [1, 2, 5];

  function niceLength(maxMicrons) {
    var exponent = Math.floor(Math.log10(maxMicrons));
    var best = Math.pow(10, exponent);
    for (var e = exponent - 1; e <= exponent; e++) {
      for (var i = 0; i < NICE.length; i++) {
        var v = NICE[i] * Math.pow(10, e);
        if (v <= maxMicrons) best = Math.max(best > maxMicrons ? 0 : best, v);
      }
    }
    return best;
  }

  function label(microns) {
    return microns >= 1000 ? (microns / 1000) + " mm" : microns + " µm";
  }

  window.histocrowdScaleBar = function (viewer, mpp) {
    var bar = document.createElement("div");
    bar.className = "scalebar";
    bar.setAttribute("data-testid", "scalebar");
    viewer.container.appendChild(bar);
    function update() {
      // Screen pixels per level-0 image pixel at the current zoom.
      var zoom = viewer.viewport.viewportToImageZoom(viewer.viewport.getZoom(true));
      var micronsPerScreenPixel = mpp / zoom;
      var length = niceLength(micronsPerScreenPixel * 150);
      bar.style.width = Math.round(length / micronsPerScreenPixel) + "px";
      bar.textContent = label(+length.toPrecision(3));
    }
    viewer.addHandler("animation", update);
    viewer.addHandler("open", update);
    return bar;
  };
})();
