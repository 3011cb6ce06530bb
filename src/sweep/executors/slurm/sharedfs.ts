import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Slurm's tasks read and write the experiment's cache and results where mergelab does, so those
 * folders (and the models and mergelab itself) must be on storage every node of the partition
 * sees. mergelab can tell in two cases: the nodes are this machine, or the folder is on a network
 * filesystem. Anything else is refused up front (executor.shared_fs: true overrides).
 */

const NETWORK_FS = new Set(['nfs', 'nfs4', 'lustre', 'gpfs', 'beegfs', 'ceph', 'fuse.ceph', 'fuse.cephfs', 'cifs', 'smb3', 'smbfs', 'glusterfs', 'fuse.glusterfs', 'panfs', 'wekafs', 'afs', 'fuse.juicefs', 'pvfs2', 'orangefs', 'ocfs2', 'gfs2', 'quobyte', 'fuse.quobyte', 'fuse.sshfs', 'virtiofs', '9p', 'vastfs', 'fuse.s3fs', 'fuse.gcsfuse']);

export function isNetworkFs(type: string): boolean {
  return NETWORK_FS.has(type);
}

/** Mount point and type of the filesystem holding `dir`, from /proc/self/mounts. */
export async function filesystemOf(dir: string): Promise<{ mount: string; type: string } | null> {
  let real = path.resolve(dir);
  try {
    real = await fs.realpath(dir);
  } catch {
    // not there yet: judge by the path as given
  }
  let mounts: string;
  try {
    mounts = await fs.readFile('/proc/self/mounts', 'utf8');
  } catch {
    return null;
  }
  let best: { mount: string; type: string } | null = null;
  for (const line of mounts.split('\n')) {
    const [, mountRaw, type] = line.split(' ');
    if (!mountRaw || !type) continue;
    const mount = mountRaw.replace(/\\040/g, ' ');
    const inside = mount === '/' || real === mount || real.startsWith(mount.endsWith('/') ? mount : mount + '/');
    if (inside && (!best || mount.length >= best.mount.length)) best = { mount, type };
  }
  return best;
}

export interface NodeAddress {
  name: string;
  host: string;
  addr: string;
}

/** Names and addresses of this machine. */
export function localNames(): Set<string> {
  const names = new Set(['localhost', '127.0.0.1', '::1', os.hostname(), os.hostname().split('.')[0]]);
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) names.add(a.address);
  return names;
}

/** Pure: the problems, one per folder that the remote nodes cannot be known to see. */
export function sharedFsProblems(folders: Array<{ what: string; dir: string; fsType: string | null }>, nodes: NodeAddress[], local: Set<string>): string[] {
  const remote = nodes.filter((n) => !local.has(n.name) && !local.has(n.host) && !local.has(n.addr));
  if (remote.length === 0) return [];
  const names = remote.map((n) => n.name);
  const shown = names.length > 5 ? `${names.slice(0, 5).join(', ')} and ${names.length - 5} more` : names.join(', ');
  return folders
    .filter((f) => f.fsType === null || !isNetworkFs(f.fsType))
    .map((f) => `${f.what} ${f.dir} is on ${f.fsType ? `a ${f.fsType} filesystem` : 'a filesystem mergelab cannot identify'} of this machine (${os.hostname()}), but the jobs run on ${shown}: it must be on storage every node sees (NFS, Lustre, GPFS, BeeGFS, CephFS, ...)`);
}
