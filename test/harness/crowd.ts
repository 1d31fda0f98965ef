// A few hundred chat users spread over the nodes, each watched: which node it is on, how often
// it lost its connection, and the longest time it was without one.
import { type ChatUser, chatUser, type SessionInfo } from './chat.ts';

export interface Member extends ChatUser {
  readonly net: number;
  node: string;
  disconnects: number;
  downSince: number | undefined;
  longestDownMs: number;
}

export async function crowd(
  baseUrl: string,
  nets: number,
  perNet: number,
  prefix = 'u',
): Promise<Member[]> {
  const members: Member[] = [];
  for (let net = 1; net <= nets; net++) {
    const batch = await Promise.all(
      Array.from({ length: perNet }, (_, i) =>
        chatUser(baseUrl, net, { username: `${prefix}${net}-${i}` }),
      ),
    );
    for (const user of batch) {
      const member: Member = {
        ...user,
        net,
        node: user.session.node,
        disconnects: 0,
        downSince: undefined,
        longestDownMs: 0,
      };
      user.socket.on('session', (s: SessionInfo) => {
        member.node = s.node;
      });
      user.socket.on('disconnect', () => {
        member.disconnects += 1;
        member.downSince = Date.now();
      });
      user.socket.on('connect', () => {
        if (member.downSince !== undefined) {
          member.longestDownMs = Math.max(member.longestDownMs, Date.now() - member.downSince);
          member.downSince = undefined;
        }
      });
      members.push(member);
    }
  }
  return members;
}

export function byNode(members: readonly Member[]): Map<string, Member[]> {
  const map = new Map<string, Member[]>();
  for (const m of members) map.set(m.node, [...(map.get(m.node) ?? []), m]);
  return map;
}

export const totalDisconnects = (members: readonly Member[]) =>
  members.reduce((sum, m) => sum + m.disconnects, 0);
