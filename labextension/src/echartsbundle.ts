/**
 * The parts of Apache ECharts the panel draws with (the comparison views and the
 * run views), registered once. This module is only reached through a dynamic
 * `import()` (charts.ts), so it lands in its own chunk and JupyterLab's start does
 * not pay for it.
 */
import * as echarts from 'echarts/core';
import {
  BarChart,
  GraphChart,
  LineChart,
  ParallelChart,
  ScatterChart
} from 'echarts/charts';
import {
  DataZoomComponent,
  GridComponent,
  LegendComponent,
  ParallelComponent,
  TooltipComponent
} from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([
  BarChart,
  GraphChart,
  LineChart,
  ParallelChart,
  ScatterChart,
  DataZoomComponent,
  GridComponent,
  LegendComponent,
  ParallelComponent,
  TooltipComponent,
  CanvasRenderer
]);

export { echarts };
