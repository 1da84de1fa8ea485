/**
 * The ECharts parts the run views draw with (graph, line, bar; tooltip, grid,
 * legend, zoom; canvas), imported one by one so the chunk holds only these. Loaded
 * lazily through viewcharts.ts: JupyterLab's start never pays for it.
 */
import { BarChart, GraphChart, LineChart } from 'echarts/charts';
import {
  DataZoomComponent,
  GridComponent,
  LegendComponent,
  TooltipComponent
} from 'echarts/components';
import { init, use } from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';

use([
  BarChart,
  GraphChart,
  LineChart,
  DataZoomComponent,
  GridComponent,
  LegendComponent,
  TooltipComponent,
  CanvasRenderer
]);

export { init };
