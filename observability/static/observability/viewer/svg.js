// The viewer's SVG helper, one home for both drawings (overview.js and timeline.js import it):
// an SVG element with its attributes, its text set through textContent, never through HTML.
var SVG = "http://www.w3.org/2000/svg";

export function node(name, attrs, text) {
  var element = document.createElementNS(SVG, name);
  Object.keys(attrs || {}).forEach(function (key) {
    element.setAttribute(key, String(attrs[key]));
  });
  if (text !== undefined) {
    element.textContent = text;
  }
  return element;
}

// A new drawing for `figure`, in place of the one drawn before (a resize draws it again):
// an accessible image of the given size, labelled for screen readers.
export function drawing(figure, cls, width, height, label) {
  var old = figure.querySelector("svg");
  if (old) {
    old.remove();
  }
  return node("svg", {
    class: cls,
    viewBox: "0 0 " + width + " " + height,
    width: width,
    height: height,
    role: "img",
    "aria-label": label,
  });
}
