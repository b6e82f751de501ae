import { LabIcon } from '@jupyterlab/ui-components';

/** Three stacked layers: a Conda foundation and the environments built on it. */
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M12 2 1.5 7.5 12 13l10.5-5.5L12 2z"/>
    <path d="M3.6 11.1 1.5 12.2 12 17.7l10.5-5.5-2.1-1.1L12 15.5l-8.4-4.4z" opacity=".8"/>
    <path d="M3.6 15.8 1.5 16.9 12 22.4l10.5-5.5-2.1-1.1L12 20.2l-8.4-4.4z" opacity=".6"/>
  </g>
</svg>`;

export const layenvIcon = new LabIcon({
  name: 'jupyter_layenv:layers',
  svgstr: svg
});
