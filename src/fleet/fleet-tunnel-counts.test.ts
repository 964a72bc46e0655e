import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FleetMember } from './fleet-member.js';
import { FleetTunnelCounts } from './fleet-tunnel-counts.js';
import type { FleetMemberView, MemberRecord } from './member-record.js';

function member(id: string, r: MemberRecord['r']): FleetMemberView {
  return { id, record: { n: id, p: 1, h: 'h', s: 0, w: 0, t: 0, c: 0, u: {}, ...(r === undefined ? {} : { r }) } };
}

/** A stand-in for the process's member: its id and the members it last read. */
function fakeMember(id: string, members: FleetMemberView[]): FleetMember {
  return { id, members } as unknown as FleetMember;
}

test('without a fleet, or while no member was read, the counts are this process\'s own', () => {
  const local = new Map([['10.0.0.1:80', 3]]);
  assert.deepEqual(new FleetTunnelCounts(() => null).view('ws', local, 0), { servers: local, instances: 1 });
  assert.deepEqual(new FleetTunnelCounts(() => fakeMember('a/1', [])).view('ws', local, 0), { servers: local, instances: 1 });
});

test('with a fleet: the other members\' tunnels are added on the servers this process may use; what it publishes', () => {
  let now = 1_000;
  const members = [
    member('a/1', undefined),
    member('b/2', { ws: [{ '10.0.0.1:80': 5, '10.0.0.2:80': 1, '10.0.0.9:80': 7 }, 2] }),
    member('c/3', { ws: [{ '10.0.0.1:80': 2 }, 1] }),
  ];
  const counts = new FleetTunnelCounts(() => fakeMember('a/1', members), () => now);
  const local = new Map([['10.0.0.1:80', 3], ['10.0.0.2:80', 0]]);
  const view = counts.view('ws', local, 4);
  assert.deepEqual(Object.fromEntries(view.servers), { '10.0.0.1:80': 10, '10.0.0.2:80': 1 });
  assert.equal(view.instances, 3);
  assert.equal(view.returningElsewhere, 3);
  assert.deepEqual(counts.published(), { ws: [{ '10.0.0.1:80': 3, '10.0.0.2:80': 0 }, 4] });
  // An upstream no longer asked about (its rebalancing gone in a reload) stops being published.
  now += 10_000;
  assert.equal(counts.published(), undefined);
});
