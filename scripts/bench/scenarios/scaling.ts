// How the cost of a delivery grows with the shape of the load: subscribers per room (100, 500,
// 2,000 in one room) and rooms (600 subscribers over 1, 10, 100 rooms), every shape at the same
// deliveries per second, so that server CPU per million deliveries is compared like for like.
import type { Generators } from '../load/generators.ts';
import type { Variant } from '../variants.ts';
import { connect, type FanoutSettings, P99_LIMIT_MS, warmedFixedLoad } from './fanout.ts';

export interface Shape {
  /** Which curve the shape is a point of. */
  axis: 'subscribers' | 'rooms';
  subscribers: number;
  rooms: number;
}

export interface ScalingPoint extends Shape {
  variant: string;
  label: string;
  /** Publications per second: the deliveries asked for over the members of a room. */
  rate: number;
  deliveredPerSec: number;
  cpuPerMillion: number;
  p50: number;
  p99: number;
  /** It did not keep up: p99 over the limit, or deliveries short of those asked for by 1 %. */
  saturated?: boolean;
  /** Why the shape was not measured (the others still are). */
  failed?: string;
}

export const SHAPES: readonly Shape[] = [
  { axis: 'subscribers', subscribers: 100, rooms: 1 },
  { axis: 'subscribers', subscribers: 500, rooms: 1 },
  { axis: 'subscribers', subscribers: 2000, rooms: 1 },
  { axis: 'rooms', subscribers: 600, rooms: 1 },
  { axis: 'rooms', subscribers: 600, rooms: 10 },
  { axis: 'rooms', subscribers: 600, rooms: 100 },
];

/** A quick run's shapes: one point of each curve's two ends, small. */
export const QUICK_SHAPES: readonly Shape[] = [
  { axis: 'subscribers', subscribers: 100, rooms: 1 },
  { axis: 'rooms', subscribers: 200, rooms: 10 },
];

/** A shape that could not be measured, and why. */
export function failedPoint(
  shape: Shape,
  variant: string,
  label: string,
  failed: string,
  rate = 0,
): ScalingPoint {
  const none = Number.NaN;
  return {
    ...shape,
    variant,
    label,
    rate,
    deliveredPerSec: 0,
    cpuPerMillion: none,
    p50: none,
    p99: none,
    failed,
  };
}

/**
 * Every shape on one running variant: the room (or rooms) opened afresh, a warm-up step, then
 * the fixed-load rounds at `deliveriesPerSec`. A shape that fails is recorded as failed.
 */
export async function scaleShapes(
  variant: Variant,
  generators: Generators,
  shapes: readonly Shape[],
  base: FanoutSettings,
  deliveriesPerSec: number,
  say: (line: string) => void,
): Promise<ScalingPoint[]> {
  const points: ScalingPoint[] = [];
  for (const shape of shapes) {
    const settings: FanoutSettings = {
      ...base,
      subscribers: shape.subscribers,
      rooms: shape.rooms,
    };
    const rate = Math.max(1, Math.round((deliveriesPerSec * shape.rooms) / shape.subscribers));
    const point = { ...shape, variant: variant.name, label: variant.label, rate };
    try {
      await generators.closeAll();
      await connect(variant, generators, settings, say);
      const fixed = await warmedFixedLoad(variant, generators, settings, rate);
      points.push({
        ...point,
        deliveredPerSec: fixed.deliveredPerSec,
        cpuPerMillion: fixed.cpuPerMillion,
        p50: fixed.p50,
        p99: fixed.p99,
        saturated: fixed.p99 >= P99_LIMIT_MS || fixed.deliveredPerSec < 0.99 * deliveriesPerSec,
      });
      say(
        `${variant.name}: ${shape.subscribers} subscribers in ${shape.rooms} room(s), ${rate} pub/s → ` +
          `${fixed.deliveredPerSec.toLocaleString('en')} delivered/s, ${fixed.cpuPerMillion.toFixed(1)} CPU s per million, p99 ${fixed.p99.toFixed(1)} ms`,
      );
    } catch (error) {
      const message = (error as Error).message.split('\n')[0] as string;
      say(`${variant.name}: ${shape.subscribers} in ${shape.rooms} room(s) failed: ${message}`);
      points.push(failedPoint(shape, variant.name, variant.label, message, rate));
    }
  }
  await generators.closeAll().catch(() => undefined);
  return points;
}
