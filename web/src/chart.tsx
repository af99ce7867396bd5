import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** A time series drawn by uPlot: x in seconds since the epoch, one or more series of y. */
export function TimeChart(props: {
  x: number[];
  series: { label: string; values: number[]; bars?: boolean }[];
  height?: number;
  label: string;
}) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!el.current) return undefined;
    const colors = ['#2563eb', '#dc2626', '#16a34a', '#9333ea'];
    const plot = new uPlot(
      {
        width: Math.max(320, el.current.clientWidth || 800),
        height: props.height ?? 220,
        series: [
          {},
          ...props.series.map((s, i) => ({
            label: s.label,
            stroke: colors[i % colors.length],
            fill: `${colors[i % colors.length]}33`,
            paths: s.bars ? uPlot.paths.bars!({ size: [0.8, 40] }) : undefined,
          })),
        ],
        axes: [{}, { size: 60 }],
      },
      [props.x, ...props.series.map((s) => s.values)],
      el.current,
    );
    return () => plot.destroy();
  }, [props.x, props.series]);
  return <div class="chart" ref={el} aria-label={props.label} />;
}
