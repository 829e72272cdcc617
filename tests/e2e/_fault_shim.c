/* Fault injection for the storage e2e tests, loaded into a real server with LD_PRELOAD.
 *
 * fsync and fdatasync fail with EIO while the file named by SIGNALPOST_FAULT_FILE starts with
 * "eio"; otherwise they are the C library's own. The file is read at each call, so a test arms
 * and disarms the fault while the server runs. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static int armed(const char *what) {
    const char *path = getenv("SIGNALPOST_FAULT_FILE");
    if (!path) return 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    char buf[32] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 && strncmp(buf, what, strlen(what)) == 0;
}
int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = dlsym(RTLD_NEXT, "fdatasync");
    if (armed("eio")) { errno = EIO; return -1; }
    return real(fd);
}
int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = dlsym(RTLD_NEXT, "fsync");
    if (armed("eio")) { errno = EIO; return -1; }
    return real(fd);
}
