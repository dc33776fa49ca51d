/** A time-series chart (uPlot: 45 kB, canvas, fast with thousands of points), with a text summary for screen readers. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

const COLORS = ['#1f6feb', '#d1242f', '#1a7f37', '#9a6700', '#8250df'];

export function Chart(props: {
  title: string;
  /** Seconds since the epoch. */
  x: number[];
  series: { label: string; values: (number | null)[] }[];
  format?: (v: number) => string;
  /** False when x is not a time (epochs). */
  time?: boolean;
}) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const format = props.format ?? ((v: number) => String(Number(v.toPrecision(3))));
  const shape = props.series.map((s) => s.label).join('|');

  useEffect(() => {
    const element = host.current;
    if (!element) return;
    const options: uPlot.Options = {
      width: Math.max(280, element.clientWidth),
      height: 180,
      scales: {
        x: {
          time: props.time ?? true,
          // One point would otherwise stretch the axis over years: give it a minute either side.
          range: (_u: uPlot, min: number, max: number): uPlot.Range.MinMax =>
            min === max ? [min - 60, max + 60] : [min, max],
        },
      },
      series: [
        {},
        ...props.series.map((s, i) => ({
          label: s.label,
          stroke: COLORS[i % COLORS.length],
          width: 1.5,
          value: (_u: uPlot, v: number | null) => (v === null ? '—' : format(v)),
        })),
      ],
      axes: [{}, { values: (_u: uPlot, ticks: number[]) => ticks.map(format), size: 60 }],
      legend: { live: true },
    };
    plot.current = new uPlot(
      options,
      [props.x, ...props.series.map((s) => s.values)] as uPlot.AlignedData,
      element,
    );
    const resize = new ResizeObserver(() => {
      plot.current?.setSize({ width: Math.max(280, element.clientWidth), height: 180 });
    });
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // Rebuilt only when the series change; new data goes through setData below.
  }, [shape]);

  useEffect(() => {
    plot.current?.setData([props.x, ...props.series.map((s) => s.values)] as uPlot.AlignedData);
  }, [props.x, props.series]);

  const latest = props.series
    .map((s) => {
      const last = [...s.values].reverse().find((v) => v !== null);
      return `${s.label} ${last === undefined || last === null ? 'no data' : format(last)}`;
    })
    .join(', ');
  return (
    <figure class="chart">
      <figcaption>
        <strong>{props.title}</strong> <span class="muted">latest: {latest}</span>
      </figcaption>
      <div ref={host} role="img" aria-label={`${props.title} over time; latest: ${latest}`} />
    </figure>
  );
}
