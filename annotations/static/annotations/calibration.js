/* Screen calibration (as jsPsych's virtual-chinrest card step): the participant holds a credit
 * card (or any ID-1 card, 8.56 x 5.398 cm) against the screen and resizes the drawn card until
 * they match. Its long side in CSS px gives px/cm; the server turns that into px/degree at the
 * study's viewing distance. On a narrow (portrait) screen the card is drawn upright. */
(function () {
  "use strict";

  const RATIO = 85.6 / 53.98;

  function Calibration(root, onDone) {
    const narrow = window.innerWidth < 600;
    const card = root.querySelector("#card");
    const slider = root.querySelector("#card-size");
    const readout = root.querySelector("#card-readout");
    const maxLong = narrow ? Math.min(1200, window.innerHeight - 260) : Math.min(1200, root.clientWidth - 20);
    slider.min = "120";
    slider.max = String(Math.max(200, Math.floor(maxLong)));
    slider.value = String(Math.min(Number(slider.max), 330)); // ~ a card on a 96 dpi screen
    function render() {
      const long = Number(slider.value), short = long / RATIO;
      card.style.width = (narrow ? short : long) + "px";
      card.style.height = (narrow ? long : short) + "px";
      card.classList.toggle("upright", narrow);
      readout.textContent = Math.round(long) + " px";
    }
    slider.addEventListener("input", render);
    root.querySelector("#card-smaller").addEventListener("click", function () { slider.value = String(Number(slider.value) - 1); render(); });
    root.querySelector("#card-larger").addEventListener("click", function () { slider.value = String(Number(slider.value) + 1); render(); });
    root.querySelector("#calibrate").addEventListener("click", function () {
      onDone({
        card_width_px: Number(slider.value),
        dpr: window.devicePixelRatio || 1,
        screen: [window.screen.width, window.screen.height],
        viewport: [window.innerWidth, window.innerHeight],
      });
    });
    render();
  }

  window.Calibration = Calibration;
})();
