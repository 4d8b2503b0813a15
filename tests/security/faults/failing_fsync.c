/* An LD_PRELOAD shim that makes fsync(2) and fdatasync(2) fail with EIO.
 *
 * While the file named by TQ_FAIL_FSYNC_WHILE exists, every fsync and
 * fdatasync of the process fails with EIO without reaching the disk, as on a
 * disk whose flushes have started to fail; once the file is gone they work
 * again. The tests compile it with cc and preload it into a broker.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int failing(void) {
    const char *marker = getenv("TQ_FAIL_FSYNC_WHILE");
    return marker != NULL && access(marker, F_OK) == 0;
}

/* The real function `name` of libc, unless the marker says to fail. */
static int sync_or_fail(const char *name, int fd) {
    if (failing()) {
        errno = EIO;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, name);
    return real(fd);
}

int fsync(int fd) { return sync_or_fail("fsync", fd); }

int fdatasync(int fd) { return sync_or_fail("fdatasync", fd); }
