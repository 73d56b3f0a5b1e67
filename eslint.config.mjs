// The linter for the app's JavaScript (`make lint`): ESLint's recommended rules on the live views
// (ui/components: browser ES modules, loaded by Streamlit from blob: URLs) and their shared library
// (static/live), and on the node unit tests (tests/js). The vendored onnxruntime (static/ort) is not ours.
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["static/ort/**", ".venv/**", "runs/**", "data/**", "artifacts/**", ".cache/**", "checkpoints/**"] },
  js.configs.recommended,
  {
    files: ["**/*.js", "**/*.mjs"],
    languageOptions: { ecmaVersion: "latest", sourceType: "module", globals: globals.browser },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    // The project's rule for a JavaScript file: 250 lines at most (a longer one is split into modules).
    rules: { "max-lines": ["error", { max: 250 }] },
  },
  { files: ["tests/js/**", "eslint.config.mjs"], languageOptions: { globals: globals.node } },
];
