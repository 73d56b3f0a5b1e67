// The Latent map's live view: this script only loads static/live/map_view.mjs (its modules: map_geometry,
// map_overlays, map_draw, map_layout), which Streamlit serves beside the app; see there for what it does.
// A module imported by URL is evaluated once per page, so the zoom it keeps survives a re-mount.

export default function (component) {
  const root = component.parentElement.querySelector(".vae-latent_map");
  let unmount = null;
  let gone = false;
  import(new URL(component.data.view_url, window.location.origin).href)
    .then((view) => {
      if (!gone) unmount = view.mount(component);
    })
    .catch((e) => {
      root.textContent = `The map could not load (${e.message || e}).`;
      root.dataset.error = String(e.message || e);
    });
  return () => {
    gone = true;
    unmount?.();
  };
}
