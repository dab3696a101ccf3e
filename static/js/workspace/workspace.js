// The annotator workspace's wiring: builds the shared context, installs the parts, loads the draft.

// Each part (viewport, panel, drawing, tools, autosave, timer, finish, keys) is a function on
// HC.workspace that adds its functions to the context `ws`; parts call one another through
// `ws` at event time, so the order they are installed in only matters for what they use at once.
(function (HC) {
  "use strict";

  var parts = HC.workspace;
  var config = JSON.parse(document.getElementById("workspace-config").textContent);
  var classes = config.classes;
  var classById = {};
  classes.forEach(function (c) { classById[c.id] = c; });
  var drawable = classes.filter(function (c) { return !c.is_background; });

  var state = {
    tool: "move",
    classId: drawable.length ? drawable[0].id : null,
    selected: null,          // shape uid
    selectedVertex: null,    // {polygon, ring, index}
    drawing: null,           // {points, classId, hole, cursor, freehand}
    popped: [],              // vertices removed by undo while drawing (for redo)
    opacityMode: 0,
    readOnly: true,          // until the draft has loaded
    etag: null,
    regionLabel: null,
    pending: false,          // local changes the server does not have yet
    saveError: "",
    inflight: null,
    saveTimer: null,
    baseSeconds: 0,
    activeSeconds: 0,
    lastInput: Date.now(),
  };

  var ws = {
    config: config,
    region: config.region,
    classById: classById,
    drawable: drawable,
    state: state,
    editor: new HC.Editor(),
    $: function (id) { return document.getElementById(id); },
  };
  var $ = ws.$, editor = ws.editor;

  parts.viewport(ws); // the viewer and overlay come first: drawing hooks into them
  parts.panel(ws);
  parts.drawing(ws);
  parts.tools(ws);
  parts.timer(ws);
  parts.autosave(ws);
  parts.finish(ws);
  parts.keys(ws);

  // Every editor change redraws the overlay and panel; a real change (not a drag in progress,
  // not a silent adopt of the server's repairs) is autosaved.
  editor.on(function (kind, detail) {
    ws.overlay.setShapes(editor.shapes);
    if (kind === "transient") {
      return;
    }
    if (state.selected !== null && !editor.find(state.selected)) {
      state.selected = null;
      state.selectedVertex = null;
      ws.overlay.setSelection(null, null);
    }
    ws.renderShapeList();
    ws.refreshControls();
    if (kind === "change" && !(detail && detail.silent)) {
      ws.markChanged();
    }
  });

  // --- buttons ---------------------------------------------------------------------------
  document.querySelectorAll("[data-class-id]").forEach(function (button) {
    button.addEventListener("click", function () { ws.setClass(Number(button.dataset.classId)); });
  });
  document.querySelectorAll("[data-tool]").forEach(function (button) {
    button.addEventListener("click", function () { ws.setTool(button.dataset.tool); });
  });
  $("ws-undo").addEventListener("click", ws.undo);
  $("ws-redo").addEventListener("click", ws.redo);
  $("ws-delete").addEventListener("click", ws.deleteSelection);
  $("ws-opacity").addEventListener("click", ws.cycleOpacity);
  $("ws-zoom-region").addEventListener("click", function () { ws.zoomToRegion(false); });
  $("ws-guidelines-open").addEventListener("click", function () {
    $("ws-guidelines").showModal();
  });
  if ($("ws-region-label")) {
    $("ws-region-label").addEventListener("change", function (event) {
      state.regionLabel = event.target.value ? Number(event.target.value) : null;
      ws.markChanged();
    });
  }

  // --- start -------------------------------------------------------------------------------
  ws.setTool("move");
  if (state.classId !== null) {
    ws.setClass(state.classId);
  }
  ws.setSaveState("loading", "Loading…");
  HC.api.getWork(config.urls.work).then(function (result) {
    if (!result.ok) {
      ws.setSaveState("error", "Not loaded");
      ws.notice("The draft could not be loaded: " + HC.api.errorText(result), "error");
      return;
    }
    ws.applyWork(result);
    ws.setSaveState("saved", result.data.status === "submitted" ? "Submitted" : "Saved");
    document.body.dataset.workLoaded = "yes";
  });

  // For tests and the browser console.
  window.histocrowdWorkspace = { editor: editor, state: state, save: ws.save, overlay: ws.overlay,
                                 config: config, markChanged: ws.markChanged, notice: ws.notice };
})(window.HC = window.HC || {});
