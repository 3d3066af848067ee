// Runs before first paint: apply the theme saved from the user's profile (dark unless they chose otherwise).
(function () {
  try {
    var theme = localStorage.getItem("sp.theme");
    if (theme === "light" || theme === "system") document.documentElement.dataset.theme = theme;
  } catch (e) { /* storage unavailable: stay dark */ }
})();
