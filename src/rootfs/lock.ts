/**
 * Locks held by a helper process, so that they are the same kind of lock the other
 * party takes and vanish with the build if it dies.
 *
 * apt and dpkg lock /var/lib/dpkg/lock-frontend and /var/lib/dpkg/lock with fcntl(2)
 * record locks (F_SETLK on the whole file). Node has no fcntl, and flock(1) takes
 * flock(2) locks, which Linux keeps apart from fcntl locks: neither would stop an
 * `apt-get upgrade`. So a small Perl program (perl-base is Essential on Debian) opens
 * each file, takes a write lock with F_SETLK (F_SETLKW after saying it waits), prints
 * "locked", and holds the locks until its stdin closes: when the build releases them,
 * or when the build process dies and the kernel closes the pipe.
 *
 * The build lock of a target uses the same helper on a file of the target, so two builds
 * of one target, from two processes or one, exclude each other.
 *
 * The helper starts on every build, a no-change rebuild included (about 60 ms in all):
 * loading strict, warnings and Fcntl took 5 of perl's 6.5 ms there. So the script loads
 * no module where the fcntl constants are Linux's generic ones (asm-generic/fcntl.h),
 * and asks Fcntl for them on any other architecture.
 */
import { spawn } from 'node:child_process';
import { DisklessError } from '../errors.js';

const GENERIC_FCNTL_ARCHES = new Set(['x64', 'arm64', 'ppc64', 's390x', 'riscv64', 'loong64']);

/** F_SETLK, F_SETLKW, F_WRLCK, SEEK_SET and O_RDWR for perl, on `arch` (process.arch). */
export function fcntlConstants(arch: string): string {
  return GENERIC_FCNTL_ARCHES.has(arch)
    ? 'sub F_SETLK(){6} sub F_SETLKW(){7} sub F_WRLCK(){1} sub SEEK_SET(){0} sub O_RDWR(){2}'
    : 'use Fcntl qw(F_SETLK F_SETLKW F_WRLCK SEEK_SET O_RDWR);';
}

// struct flock on LP64 Linux: short l_type, short l_whence, (pad), off_t l_start,
// off_t l_len, pid_t l_pid, (pad). Refuse other layouts rather than guess.
const HOLDER = String.raw`
${fcntlConstants(process.arch)}
$| = 1;
die "diskless lock: only 64-bit systems are supported\n" unless length(pack('l!', 0)) == 8;
my @held;
for my $file (@ARGV) {
  sysopen(my $fh, $file, O_RDWR) or die "diskless lock: cannot open $file: $!\n";
  my $lock = pack('s s x4 q q i x4', F_WRLCK, SEEK_SET, 0, 0, 0);
  unless (fcntl($fh, F_SETLK, $lock)) {
    print "waiting $file\n";
    fcntl($fh, F_SETLKW, $lock) or die "diskless lock: cannot lock $file: $!\n";
  }
  push @held, $fh;
}
print "locked\n";
1 while <STDIN>;
`;

export interface HeldLock {
  /** Releases the locks and waits for the helper to exit. */
  release(): Promise<void>;
}

/**
 * Takes write locks on `files` (which must exist), in order, waiting as long as
 * another process holds one; `onWait` is told which file it waits for.
 */
export function holdLocks(
  files: readonly string[],
  onWait: (file: string) => void,
): Promise<HeldLock> {
  return new Promise((resolve, reject) => {
    const child = spawn('perl', ['-e', HOLDER, '--', ...files], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    let buffered = '';
    let locked = false;
    const exited = new Promise<void>((done) => {
      child.on('close', () => {
        done();
      });
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString('utf8');
    });
    child.stdout.on('data', (b: Buffer) => {
      buffered += b.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.startsWith('waiting ')) onWait(line.slice('waiting '.length));
        if (line === 'locked') {
          locked = true;
          resolve({
            release: async () => {
              child.stdin.end();
              await exited;
            },
          });
        }
      }
    });
    child.on('error', (error) => {
      reject(new DisklessError(`perl (needed to take the locks): ${error.message}`));
    });
    child.on('close', (code) => {
      if (!locked) {
        reject(
          new DisklessError(
            stderr.trim() || `perl lock helper exited with code ${code ?? -1} before locking`,
          ),
        );
      }
    });
    child.stdin.on('error', () => undefined);
  });
}
