// The timer queue on the virtual clock: exact firing times, order among equals, cancel, re-arm
// earlier and later, arming from inside a callback, and that many deadlines share one clock timer.
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../src/clock.ts';
import { TimerQueue } from '../src/timer-queue.ts';

function setup(): { clock: VirtualClock; queue: TimerQueue; log: string[] } {
  const clock = new VirtualClock(1000);
  return { clock, queue: new TimerQueue(clock), log: [] };
}

describe('TimerQueue', () => {
  it('fires each deadline at its exact time, equal times in the order armed', () => {
    const { clock, queue, log } = setup();
    const at = (name: string) => () => log.push(`${name}@${clock.now()}`);
    queue.deadline(at('c')).armIn(30);
    queue.deadline(at('a')).armIn(10);
    queue.deadline(at('b1')).armIn(20);
    queue.deadline(at('b2')).armIn(20);
    queue.deadline(at('frac')).armIn(12.5);
    clock.advance(19.999);
    expect(log).toEqual(['a@1010', 'frac@1012.5']);
    clock.advance(100);
    expect(log).toEqual(['a@1010', 'frac@1012.5', 'b1@1020', 'b2@1020', 'c@1030']);
    expect(queue.size).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('cancel: never fires; cancelling twice or after firing does nothing', () => {
    const { clock, queue, log } = setup();
    const d = queue.deadline(() => log.push('fired'));
    d.armIn(10);
    expect(d.armed).toBe(true);
    d.cancel();
    d.cancel();
    expect(d.armed).toBe(false);
    clock.advance(50);
    expect(log).toEqual([]);
    d.armIn(5);
    clock.advance(5);
    expect(log).toEqual(['fired']);
    expect(d.armed).toBe(false);
    d.cancel();
    clock.advance(50);
    expect(log).toEqual(['fired']);
  });

  it('re-arm later: fires at the new time only, without a clock timer per re-arm', () => {
    const { clock, queue, log } = setup();
    const d = queue.deadline(() => log.push(`rto@${clock.now()}`));
    d.armIn(200);
    // an ACK every millisecond pushes the retransmission timer back, 100 times
    for (let i = 0; i < 100; i++) {
      clock.advance(1);
      d.armIn(200);
    }
    expect(queue.stats.clockTimers).toBe(1);
    clock.advance(199);
    expect(log).toEqual([]);
    clock.advance(1);
    expect(log).toEqual(['rto@1300']);
    // one early wake-up at the first time (1200), filed again under 1300
    expect(queue.stats.refiled).toBe(1);
    expect(queue.stats.clockTimers).toBe(2);
  });

  it('re-arm earlier: fires at the earlier time, once', () => {
    const { clock, queue, log } = setup();
    const d = queue.deadline(() => log.push(`@${clock.now()}`));
    const other = queue.deadline(() => log.push(`other@${clock.now()}`));
    other.armIn(15);
    d.armIn(100);
    d.armIn(10);
    clock.advance(200);
    expect(log).toEqual(['@1010', 'other@1015']);
  });

  it('armed again for the same time, it goes behind deadlines armed in between', () => {
    const { clock, queue, log } = setup();
    const a = queue.deadline(() => log.push('a'));
    const b = queue.deadline(() => log.push('b'));
    a.armAt(1010);
    b.armAt(1010);
    a.armAt(1010);
    clock.advance(10);
    expect(log).toEqual(['b', 'a']);
  });

  it('a callback may re-arm its own deadline and arm others, also for now: they fire at the right virtual time', () => {
    const { clock, queue, log } = setup();
    let n = 0;
    const tick = queue.deadline(() => {
      log.push(`tick@${clock.now()}`);
      if (++n < 3) tick.armIn(10);
      if (n === 2) queue.deadline(() => log.push(`now@${clock.now()}`)).armIn(0);
    });
    tick.armIn(10);
    clock.advance(100);
    expect(log).toEqual(['tick@1010', 'tick@1020', 'now@1020', 'tick@1030']);
  });

  it('a time already past fires on the next turn of the clock, not inside armAt', () => {
    const { clock, queue, log } = setup();
    queue.deadline(() => log.push(`@${clock.now()}`)).armAt(900);
    expect(log).toEqual([]);
    clock.advance(0);
    expect(log).toEqual(['@1000']);
  });

  it('a thousand deadlines hold one clock timer, and fire in time order', () => {
    const { clock, queue } = setup();
    const fired: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const due = (i * 7919) % 1000; // every time 0..999 once, shuffled
      queue.deadline(() => fired.push(clock.now())).armIn(due + 1);
    }
    expect(clock.pending).toBe(1);
    clock.advance(2000);
    expect(fired).toEqual(Array.from({ length: 1000 }, (_, i) => 1001 + i));
    expect(queue.stats.fired).toBe(1000);
  });

  it('a callback that throws does not stop the queue', () => {
    const { clock, queue, log } = setup();
    queue.deadline(() => {
      throw new Error('bug');
    }).armIn(10);
    queue.deadline(() => log.push('later')).armIn(20);
    expect(() => clock.advance(10)).toThrow('bug');
    clock.advance(10);
    expect(log).toEqual(['later']);
  });

  it('beforeFiring runs first: what it re-arms or cancels (an ACK read late) does not fire', () => {
    const { clock, queue, log } = setup();
    const rto = queue.deadline(() => log.push(`rto@${clock.now()}`));
    const probe = queue.deadline(() => log.push(`probe@${clock.now()}`));
    rto.armIn(200);
    probe.armIn(100);
    let reads = 0;
    queue.beforeFiring = () => {
      reads++;
      if (reads === 1) {
        // the device held an ACK: it cancels the probe and pushes the retransmission back
        probe.cancel();
        rto.armIn(200);
      }
    };
    clock.advance(100);
    expect(log).toEqual([]);
    clock.advance(200);
    expect(log).toEqual(['rto@1300']);
    // at 1100 (the probe's time) and 1300; the wake-up at 1200 (the RTO's old time) only refiled it
    expect(reads).toBe(2);
    expect(queue.stats.refiled).toBe(1);
  });
});
