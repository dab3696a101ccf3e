// The gold feedback page (templates/annotation/feedback.html): each box shows or hides one
// outline layer over the region.
document.querySelectorAll(".overlay-toggles input").forEach((box) => {
  box.addEventListener("change", () => {
    document.querySelector(`#overlay .${box.dataset.layer}`).style.display = box.checked ? "" : "none";
  });
});
