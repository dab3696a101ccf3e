// The expert's adjudication page: OpenSeadragon on the region, the comparison layers, and the
// decision: accept the consensus, edit it (its polygons loaded into the shared polygon editor)
// or redraw from nothing; a reason is required; the decision is POSTed to the API.
(function (HC) {
  "use strict";

  var config = JSON.parse(document.getElementById("adjudicate-config").textContent);
  var region = config.region;
  var classById = {};
  config.classes.forEach(function (c) { classById[c.id] = c; });
  var $ = function (id) { return document.getElementById(id); };

  var state = { mode: null, tool: "move", selected: null, vertex: null, drawing: null };
  var editor = new HC.Editor();

  var viewer = OpenSeadragon({
    id: "adj-viewer",
    prefixUrl: "/static/vendor/openseadragon/images/",
    tileSources: config.dziUrl,
    showNavigator: true,
    navigatorPosition: "BOTTOM_RIGHT",
    showNavigationControl: false,
    maxZoomPixelRatio: 2,
    visibilityRatio: 0.2,
    keyboardNavEnabled: false,
    gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: false, flickEnabled: false },
    timeout: 60000,
  });
  window.histocrowdViewer = viewer;

  var overlay = new HC.Overlay(viewer, {
    region: region,
    slide: config.slide,
    colorOf: function (classId) { return classById[classId] ? classById[classId].color : "#fff"; },
    onHandleDown: onHandleDown,
  });
  var layers = HC.AdjLayers(overlay, config);

  viewer.addHandler("open", function () {
    var item = viewer.world.getItemAt(0);
    var mx = region.width * 0.25, my = region.height * 0.25;
    viewer.viewport.fitBounds(item.imageToViewportRectangle(
      region.x - mx, region.y - my, region.width + 2 * mx, region.height + 2 * my), true);
    document.body.dataset.viewerOpen = "yes";
    item.addHandler("fully-loaded-change", function (e) {
      document.body.dataset.tilesLoaded = e.fullyLoaded ? "yes" : "no";
    });
  });

  function elementPosition(event) {
    var box = viewer.element.getBoundingClientRect();
    return { x: event.clientX - box.left, y: event.clientY - box.top };
  }

  function toImage(position) {
    var p = viewer.viewport.viewerElementToImageCoordinates(
      new OpenSeadragon.Point(position.x, position.y));
    return [HC.geometry.round1(p.x), HC.geometry.round1(p.y)];
  }

  function notice(text, kind) {
    var node = $("adj-notice");
    node.textContent = text;
    node.dataset.kind = kind || "";
    node.hidden = !text;
  }

  // --- editor ------------------------------------------------------------------------------
  function refresh() {
    var editing = state.mode !== null;
    document.querySelectorAll("[data-edit]").forEach(function (node) { node.disabled = !editing; });
    document.querySelectorAll("[data-tool]").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.dataset.tool === state.tool));
    });
    $("adj-undo").disabled = !editing || !editor.canUndo();
    $("adj-redo").disabled = !editing || !editor.canRedo();
    $("adj-delete").disabled = !editing || state.selected === null;
    $("adj-save").disabled = !editing;
    $("adj-viewer").dataset.tool = state.tool;
    $("adj-mode").textContent = state.mode === "edit" ? "Editing the consensus"
      : state.mode === "redraw" ? "Redrawing" : "Viewing";
    $("adj-mode").dataset.state = state.mode ? "dirty" : "saved";
  }

  editor.on(function (kind) {
    overlay.setShapes(editor.shapes);
    if (kind === "transient") {
      return;
    }
    if (state.selected !== null && !editor.find(state.selected)) {
      select(null, null);
    }
    refresh();
  });

  function select(uid, vertex) {
    state.selected = uid;
    state.vertex = vertex;
    overlay.setSelection(uid, vertex);
    overlay.setShowHandles(uid !== null);
    refresh();
  }

  function setTool(tool) {
    if (state.drawing && tool !== "polygon") {
      state.drawing = null;
      overlay.setDrawing(null);
    }
    state.tool = tool;
    viewer.setMouseNavEnabled(true);
    refresh();
  }

  function startMode(mode) {
    state.mode = mode;
    editor.load(mode === "edit" && config.run ? config.run.polygons : []);
    select(null, null);
    setTool(mode === "redraw" ? "polygon" : "move");
    layers.setVisible("consensus", mode !== "edit" && $("adj-show-consensus").checked);
    notice(mode === "edit" ? "The consensus is loaded: select a shape to move or delete its points."
      : "Draw the answer with the Polygon tool; save with no shape if the region holds nothing.");
  }

  // Vertex handles: drag to move (one undo step), Alt-click to delete; the draft's first point
  // closes the ring.
  function onHandleDown(handle, event) {
    if (handle.kind === "close") {
      closeDrawing();
      return;
    }
    if (handle.kind !== "vertex" || state.mode === null) {
      return;
    }
    if (event.altKey) {
      var result = editor.deleteVertex(handle.uid, handle.at);
      if (!result.ok) {
        notice(result.reason, "warn");
      }
      select(handle.uid, null);
      return;
    }
    select(handle.uid, handle.at);
    editor.beginTransient();
    function move(e) {
      editor.moveVertex(handle.uid, handle.at, toImage(elementPosition(e)));
    }
    // Capture phase: the handles stop their own pointerup from bubbling (so OpenSeadragon
    // does not see it), and the handle under the pointer is redrawn during the drag.
    function up() {
      window.removeEventListener("pointermove", move, true);
      window.removeEventListener("pointerup", up, true);
      editor.endTransient();
      overlay.setSelection(state.selected, state.vertex);
    }
    window.addEventListener("pointermove", move, true);
    window.addEventListener("pointerup", up, true);
  }

  function closeDrawing() {
    var drawing = state.drawing;
    state.drawing = null;
    overlay.setDrawing(null);
    if (!drawing || drawing.points.length < 3) {
      notice("A shape needs at least three points.", "warn");
      return;
    }
    var uid = editor.addShape(drawing.classId, drawing.points);
    if (uid) {
      select(uid, null);
    }
  }

  viewer.addHandler("canvas-click", function (event) {
    if (!event.quick || state.mode === null) {
      return;
    }
    var point = toImage(event.position);
    if (state.tool === "polygon") {
      event.preventDefaultAction = true;
      if (!state.drawing) {
        state.drawing = { points: [], classId: Number($("adj-class").value), hole: false };
      }
      state.drawing.points.push(point);
      overlay.setDrawing(state.drawing);
      return;
    }
    var shape = editor.shapeAt(point);
    select(shape ? shape.uid : null, null);
  });

  viewer.canvas.addEventListener("pointermove", function (event) {
    if (state.drawing) {
      state.drawing.cursor = toImage(elementPosition(event));
      overlay.setDrawing(state.drawing);
    }
  });

  function deleteSelection() {
    if (state.selected === null) {
      return;
    }
    if (state.vertex) {
      var result = editor.deleteVertex(state.selected, state.vertex);
      if (!result.ok) {
        notice(result.reason, "warn");
      }
      select(state.selected, null);
    } else {
      editor.deleteShape(state.selected);
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.target.tagName === "TEXTAREA" || event.target.tagName === "INPUT") {
      return;
    }
    if (event.key === "Enter" && state.drawing) {
      closeDrawing();
    } else if (event.key === "Escape" && state.drawing) {
      state.drawing = null;
      overlay.setDrawing(null);
    } else if ((event.key === "Delete" || event.key === "Backspace") && state.mode) {
      deleteSelection();
    } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z" && state.mode) {
      if (event.shiftKey) { editor.redo(); } else { editor.undo(); }
    } else {
      return;
    }
    event.preventDefault();
  });

  // --- the decision --------------------------------------------------------------------------
  function decide(decision) {
    var reason = $("adj-reason").value.trim();
    if (!reason) {
      notice("Say why: a decision needs a reason.", "error");
      $("adj-reason").focus();
      return;
    }
    if (state.drawing) {
      notice("Close or cancel the outline you are drawing first.", "warn");
      return;
    }
    var body = { decision: decision, reason: reason };
    if (decision !== "accept") {
      body.shapes = editor.payload();
    }
    notice("Saving…");
    HC.api.submit(config.urls.decide, null, body).then(function (result) {
      if (!result.ok) {
        notice("Not saved: " + HC.api.errorText(result), "error");
        return;
      }
      state.mode = null;
      select(null, null);
      setTool("move");
      if (decision !== "accept") {
        editor.load(result.data.shapes);
      }
      layers.setVisible("consensus", $("adj-show-consensus").checked);
      document.body.dataset.decisionSaved = result.data.decision;
      notice("Decision saved (" + result.data.decision + "). Back to the queue for the next one.",
             "ok");
    }, function () {
      notice("Not saved: the server could not be reached.", "error");
    });
  }

  $("adj-accept").addEventListener("click", function () { decide("accept"); });
  $("adj-edit").addEventListener("click", function () { startMode("edit"); });
  $("adj-redraw").addEventListener("click", function () { startMode("redraw"); });
  $("adj-save").addEventListener("click", function () { decide(state.mode); });
  $("adj-undo").addEventListener("click", function () { editor.undo(); });
  $("adj-redo").addEventListener("click", function () { editor.redo(); });
  $("adj-delete").addEventListener("click", deleteSelection);
  document.querySelectorAll("[data-tool]").forEach(function (button) {
    button.addEventListener("click", function () { setTool(button.dataset.tool); });
  });
  document.querySelectorAll("[data-layer]").forEach(function (box) {
    box.addEventListener("change", function () { layers.setVisible(box.dataset.layer, box.checked); });
  });
  $("adj-show-consensus").addEventListener("change", function (event) {
    layers.setVisible("consensus", event.target.checked);
  });
  $("adj-show-heatmap").addEventListener("change", function (event) {
    layers.setVisible("heatmap", event.target.checked);
  });
  $("adj-heat-opacity").addEventListener("input", function (event) {
    layers.setHeatOpacity(Number(event.target.value) / 100);
  });

  if (config.current) {
    editor.load(config.current.shapes);  // the standing decision, shown read-only
  }
  refresh();
  window.histocrowdAdjudicate = { editor: editor, state: state, overlay: overlay, layers: layers };
})(window.HC = window.HC || {});
