/**
 * The panel's icon: rising curves, drawn in the theme's icon colour.
 */
import { LabIcon } from '@jupyterlab/ui-components';

const RUNS_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M3 3h2v16h16v2H3z"/>
    <path d="M7 16.6l4.2-5.2 3 2.6L19.4 7 21 8.2l-6.5 8.3-3-2.6-3 3.8z"/>
    <circle cx="7.5" cy="8" r="1.6"/>
    <circle cx="12" cy="6" r="1.6"/>
  </g>
</svg>`;

export const runsIcon = new LabIcon({ name: 'nbtrack:runs', svgstr: RUNS_SVG });
