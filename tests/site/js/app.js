// Example Daily: mark external links.
document.addEventListener("DOMContentLoaded", function () {
  for (const a of document.querySelectorAll("a[href^='http']")) {
    a.rel = "noopener";
  }
});
