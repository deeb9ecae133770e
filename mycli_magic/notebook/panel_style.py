"""The live panel's stylesheet: JupyterLab's theme variables (so light and dark themes both read
well), with fallbacks for frontends without them; the rules for a panel whose kernel is gone."""

CSS = """<style>
.mycli-panel { border: var(--jp-border-width, 1px) solid var(--jp-border-color2, #e0e0e0); border-radius: 4px;
  padding: 6px 8px; margin: 2px 0; background: var(--jp-layout-color1, #fff); color: var(--jp-ui-font-color1, #222);
  font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: var(--jp-ui-font-size1, 13px); }
.mycli-panel .widget-html-content { min-width: 0; } /* wrap and ellipsis within the panel, never past its edge */
.mycli-head { display: flex; flex-wrap: wrap; align-items: center; gap: 2px 12px; }
.mycli-id { font-family: var(--jp-code-font-family, monospace); font-weight: 600; }
.mycli-meta, .mycli-cmd { color: var(--jp-ui-font-color2, #666); }
.mycli-cmd { font-family: var(--jp-code-font-family, monospace); font-size: var(--jp-code-font-size, 13px);
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 100%; }
.mycli-badge { display: inline-block; padding: 1px 9px; border-radius: 10px; color: #fff; font-weight: 600;
  font-size: var(--jp-ui-font-size0, 11px); letter-spacing: .03em; white-space: nowrap; }
.mycli-badge.pending { background: var(--jp-warn-color1, #f57c00); }
.mycli-badge.running { background: var(--jp-brand-color1, #1976d2); }
.mycli-badge.ok { background: var(--jp-success-color1, #388e3c); }
.mycli-badge.failed, .mycli-badge.lost { background: var(--jp-error-color1, #d32f2f); }
.mycli-badge.stopped { background: var(--jp-warn-color0, #bf360c); }
.mycli-log { max-height: 28em; overflow: auto; display: flex; flex-direction: column-reverse;
  background: var(--jp-cell-editor-background, #f5f5f5); border: 1px solid var(--jp-border-color2, #e0e0e0); border-radius: 2px; }
/* the box scrolls, never the pre (JupyterLab gives pre overflow: auto): column-reverse then keeps the newest line in view */
.mycli-log pre { flex: none; overflow: visible; margin: 0; padding: 4px 8px; font-family: var(--jp-code-font-family, monospace);
  font-size: var(--jp-code-font-size, 13px); line-height: var(--jp-code-line-height, 1.4);
  color: var(--jp-content-font-color1, #000); white-space: pre-wrap; overflow-wrap: anywhere; }
.mycli-ts { color: var(--jp-ui-font-color3, #999); user-select: none; }
.mycli-empty { color: var(--jp-ui-font-color3, #999); font-style: italic; }
.mycli-note { color: var(--jp-ui-font-color2, #666); font-size: var(--jp-ui-font-size0, 11px); }
.mycli-note, .mycli-stale, .mycli-summary { line-height: 1.5; } /* not the widgets' 28px row height */
.mycli-panel code { font-family: var(--jp-code-font-family, monospace); font-size: inherit; white-space: nowrap; }
.mycli-summary { font-weight: 600; }
.mycli-summary.ok { color: var(--jp-success-color1, #388e3c); }
.mycli-summary.failed, .mycli-summary.lost { color: var(--jp-error-color1, #d32f2f); }
.mycli-summary.stopped { color: var(--jp-warn-color0, #bf360c); }
.mycli-stale { display: none; }
.mycli-panel.jupyter-widgets-disconnected .mycli-stale { display: block; margin-top: 4px; padding: 2px 6px;
  border-left: 3px solid var(--jp-warn-color1, #f57c00); color: var(--jp-ui-font-color1, #222); }
.mycli-panel.jupyter-widgets-disconnected .mycli-badge { opacity: .55; }
.mycli-panel.jupyter-widgets-disconnected::before, .mycli-panel .jupyter-widgets-disconnected::before { display: none; }
.mycli-panel.jupyter-widgets-disconnected .widget-button, .mycli-panel.jupyter-widgets-disconnected .widget-toggle-button {
  opacity: .45; pointer-events: none; }
</style>"""
