/* Running a program: posix_spawnp with an argv array (never a shell), stdin
 * from /dev/null, stdout and stderr through pipes read in one poll() loop,
 * a deadline, and a polite stop (SIGINT, then SIGKILL after a grace period).
 *
 * SIGINT rather than SIGTERM: restic up to 0.16 does not catch SIGTERM and
 * leaves its repository lock behind, while on SIGINT it removes the lock and
 * exits 130. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fs.h"
#include "xalloc.h"

extern char **environ;

volatile sig_atomic_t sc_stop_requested = 0;
volatile sig_atomic_t sc_reload_requested = 0;

#define ERR_KEEP ((size_t)64 * 1024)          /* tail of stderr kept for messages */
#define DEFAULT_MAX_STDOUT ((size_t)64 << 20) /* 64 MiB */
#define DEFAULT_GRACE_S 10L
#define SLICE_MS 200  /* poll slice: bounds how late we notice a stop (or an exit without pidfd) */
#define DRAIN_MS 2000 /* after the child exits, how long its pipes may stay open */

/* A growable byte buffer, always NUL-terminated once allocated. */
struct buf {
    char *p;
    size_t len, cap;
};

static void buf_append(struct buf *b, const char *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Everything spawn_run tracks about one running child. */
struct child {
    const struct spawn_opts *o;
    struct spawn_result *r;
    pid_t pid;
    bool reaped;
    int out_fd, err_fd; /* our read ends, -1 when closed */
    int pid_fd;         /* readable when the child exits; -1 if the kernel lacks pidfd */
    struct buf out;     /* collected stdout, or the partial line */
    struct buf err;     /* stderr tail */
    size_t max_out;
    bool overflow;         /* stdout exceeded max_out: we stopped the child */
    bool data_refused;     /* on_stdout_data failed: we stopped the child */
    int read_errno;        /* a read on a pipe failed */
    long long deadline_ms; /* SIGINT then (0: no timeout) */
    long long kill_at_ms;  /* SIGKILL then, once SIGINT was sent (0: not yet) */
    bool killed;           /* SIGKILL was sent */
};

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* A close-on-exec pipe whose ends are both above 2, so that dup2 onto
 * 0/1/2 in the child never finds the source already in place (dup2 onto
 * itself would keep FD_CLOEXEC and the child would lose the fd). */
static int make_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        if (fds[i] > 2)
            continue;
        int moved = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
        if (moved < 0) {
            int saved = errno;
            close(fds[0]);
            close(fds[1]);
            errno = saved;
            return -1;
        }
        close(fds[i]);
        fds[i] = moved;
    }
    return 0;
}

/* Keep only the last ERR_KEEP bytes of stderr. */
static void keep_err_tail(struct buf *b)
{
    if (b->len <= ERR_KEEP)
        return;
    memmove(b->p, b->p + (b->len - ERR_KEEP), ERR_KEEP);
    b->len = ERR_KEEP;
    b->p[b->len] = '\0';
}

/* Hand every complete line in c->out to the callback; keep the rest. */
static void emit_lines(struct child *c)
{
    size_t start = 0;
    for (;;) {
        char *nl = memchr(c->out.p + start, '\n', c->out.len - start);
        if (nl == NULL)
            break;
        size_t len = (size_t)(nl - (c->out.p + start));
        *nl = '\0';
        c->o->on_stdout_line(c->o->ctx, c->out.p + start, len);
        start += len + 1;
    }
    if (start > 0) {
        memmove(c->out.p, c->out.p + start, c->out.len - start);
        c->out.len -= start;
        c->out.p[c->out.len] = '\0';
    }
}

/* Ask the child to stop: SIGINT now, SIGKILL after the grace period. */
static void stop_child(struct child *c)
{
    if (c->kill_at_ms != 0 || c->reaped)
        return;
    long grace = c->o->grace_s > 0 ? c->o->grace_s : DEFAULT_GRACE_S;
    (void)kill(c->pid, SIGINT); /* cannot fail: our unreaped child, a valid signal */
    c->kill_at_ms = now_ms() + grace * 1000;
}

static void on_stdout(struct child *c, const char *data, size_t n)
{
    if (c->overflow || c->data_refused)
        return; /* discard what comes while the child stops */
    if (c->o->on_stdout_data) {
        if (c->o->on_stdout_data(c->o->ctx, data, n) != 0) {
            c->data_refused = true;
            stop_child(c);
        }
        return;
    }
    if (c->out.len + n > c->max_out) {
        c->overflow = true;
        stop_child(c);
        return;
    }
    buf_append(&c->out, data, n);
    if (c->o->on_stdout_line)
        emit_lines(c);
}

static void on_stderr(struct child *c, const char *data, size_t n)
{
    if (c->o->stderr_passthrough)
        (void)fs_write_all(STDERR_FILENO, data, n); /* best effort: it is a copy */
    buf_append(&c->err, data, n);
    keep_err_tail(&c->err);
}

/* Read what one pipe has; close it on EOF or error. */
static void read_pipe(struct child *c, int *fd, bool is_stdout)
{
    char chunk[65536];
    ssize_t n = read(*fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n < 0) {
        c->read_errno = errno;
        close_fd(fd);
        return;
    }
    if (n == 0) {
        close_fd(fd);
        return;
    }
    if (is_stdout)
        on_stdout(c, chunk, (size_t)n);
    else
        on_stderr(c, chunk, (size_t)n);
}

static void record_status(struct child *c, int status)
{
    c->reaped = true;
    if (WIFEXITED(status))
        c->r->exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        c->r->exit_code = 128 + WTERMSIG(status);
    else
        c->r->exit_code = 1;
}

/* Reap the child if it has exited. Returns -1 on a waitpid failure. */
static int try_reap(struct child *c, bool block)
{
    while (!c->reaped) {
        int status;
        pid_t w = waitpid(c->pid, &status, block ? 0 : WNOHANG);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        if (w == 0)
            return 0;
        record_status(c, status);
    }
    return 0;
}

/* The milliseconds poll may sleep: one slice, or less when the next step
 * (SIGINT at the deadline, SIGKILL after the grace) is due sooner. */
static int poll_wait_ms(const struct child *c, long long now)
{
    long long wait = SLICE_MS;
    if (!c->reaped && c->deadline_ms > 0 && !c->r->timed_out && c->deadline_ms - now < wait)
        wait = c->deadline_ms - now;
    if (!c->reaped && c->kill_at_ms > 0 && !c->killed && c->kill_at_ms - now < wait)
        wait = c->kill_at_ms - now;
    return wait < 0 ? 0 : (int)wait;
}

/* The poll loop: runs until the child is reaped and its pipes are closed
 * (or stayed open DRAIN_MS after it exited: a grandchild holds them).
 * Returns -1 with errno set when poll or waitpid fails. */
static int supervise(struct child *c)
{
    long long reaped_at = 0;
    if (c->o->timeout_s > 0)
        c->deadline_ms = now_ms() + c->o->timeout_s * 1000;

    for (;;) {
        long long now = now_ms();
        if (sc_stop_requested && !c->o->ignore_stop && !c->r->interrupted && !c->reaped) {
            c->r->interrupted = true;
            stop_child(c);
        }
        if (c->deadline_ms > 0 && now >= c->deadline_ms && !c->r->timed_out && !c->reaped) {
            c->r->timed_out = true;
            stop_child(c);
        }
        if (c->kill_at_ms > 0 && now >= c->kill_at_ms && !c->killed && !c->reaped) {
            (void)kill(c->pid, SIGKILL);
            c->killed = true;
        }
        if (try_reap(c, false) != 0)
            return -1;
        if (c->reaped && reaped_at == 0)
            reaped_at = now;
        if (c->reaped && ((c->out_fd < 0 && c->err_fd < 0) || now - reaped_at >= DRAIN_MS))
            return 0;

        struct pollfd pfd[3];
        nfds_t n = 0;
        if (c->out_fd >= 0)
            pfd[n++] = (struct pollfd){.fd = c->out_fd, .events = POLLIN};
        if (c->err_fd >= 0)
            pfd[n++] = (struct pollfd){.fd = c->err_fd, .events = POLLIN};
        if (c->pid_fd >= 0 && !c->reaped)
            pfd[n++] = (struct pollfd){.fd = c->pid_fd, .events = POLLIN};
        int ready = poll(n ? pfd : NULL, n, poll_wait_ms(c, now));
        if (ready < 0 && errno == EINTR)
            continue; /* a signal: sc_stop_requested is looked at above */
        if (ready < 0)
            return -1;
        for (nfds_t i = 0; i < n; i++) {
            if (pfd[i].revents == 0)
                continue;
            if (pfd[i].fd == c->out_fd)
                read_pipe(c, &c->out_fd, true);
            else if (pfd[i].fd == c->err_fd)
                read_pipe(c, &c->err_fd, false);
            /* pid_fd: the child exited; the loop's top reaps it */
        }
    }
}

/* A caller-given fd for the child's stdout. 0 counts as "none": it is our
 * stdin, never a sensible destination, and so zero-initialised options
 * (stdout_fd = 0) mean "a pipe" as every other zero field means "default". */
static bool has_stdout_fd(const struct spawn_opts *o)
{
    return o->stdout_fd > 0;
}

/* File actions: stdin from /dev/null, stdout to a pipe or the given fd,
 * stderr to a pipe, and the optional working directory. */
static int build_actions(posix_spawn_file_actions_t *fa, const struct spawn_opts *o, int out_w,
                         int err_w)
{
    int rc = posix_spawn_file_actions_init(fa);
    if (rc != 0)
        return rc;
    rc = posix_spawn_file_actions_addopen(fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(fa, has_stdout_fd(o) ? o->stdout_fd : out_w,
                                              STDOUT_FILENO);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(fa, err_w, STDERR_FILENO);
    if (rc == 0 && o->cwd)
        rc = posix_spawn_file_actions_addchdir_np(fa, o->cwd);
    /* The fd the child keeps, as its fd 3 (the pipe end that may be there
     * was dup'ed onto 1 or 2 above). dup2 onto itself clears FD_CLOEXEC in
     * posix_spawn (POSIX.1-2024; glibc since 2.29). */
    if (rc == 0 && o->keep_fd > 2)
        rc = posix_spawn_file_actions_adddup2(fa, o->keep_fd, 3);
    /* No other fd of ours reaches the child, even one opened without
     * O_CLOEXEC elsewhere (a lock held by a hook's daemon would outlive us). */
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(fa, o->keep_fd > 2 ? 4 : 3);
    if (rc != 0)
        posix_spawn_file_actions_destroy(fa);
    return rc;
}

/* Attributes: no blocked signals, and default dispositions for the signals
 * we may send or ignore (an ignored SIGPIPE would be inherited across exec). */
static int build_attr(posix_spawnattr_t *attr)
{
    sigset_t none, deflt;
    int rc = posix_spawnattr_init(attr);
    if (rc != 0)
        return rc;
    sigemptyset(&none);
    sigemptyset(&deflt);
    sigaddset(&deflt, SIGPIPE);
    sigaddset(&deflt, SIGINT);
    sigaddset(&deflt, SIGTERM);
    rc = posix_spawnattr_setsigmask(attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(attr, &deflt);
    if (rc == 0)
        rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc != 0)
        posix_spawnattr_destroy(attr);
    return rc;
}

/* Start the child. Returns 0, or an errno value. Closes the child's pipe
 * ends in any case. */
static int start_child(struct child *c, int out_pipe[2], int err_pipe[2])
{
    const struct spawn_opts *o = c->o;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = build_actions(&fa, o, out_pipe[1], err_pipe[1]);
    if (rc == 0) {
        rc = build_attr(&attr);
        if (rc == 0) {
            rc = posix_spawnp(&c->pid, o->argv[0], &fa, &attr, o->argv, o->env ? o->env : environ);
            posix_spawnattr_destroy(&attr);
        }
        posix_spawn_file_actions_destroy(&fa);
    }
    close_fd(&out_pipe[1]);
    close_fd(&err_pipe[1]);
    return rc;
}

/* A pidfd makes poll() wake up the moment the child exits. Optional: without
 * it (kernel < 5.3, or valgrind) the poll slice notices the exit; after the
 * first ENOSYS we stop asking. */
static int open_pidfd(pid_t pid)
{
    static bool unsupported;
    if (unsupported)
        return -1;
    int fd = pidfd_open(pid, 0);
    if (fd < 0 && errno == ENOSYS)
        unsupported = true;
    return fd;
}

/* When something fails after the child started: stop it hard and reap it,
 * so that no process or zombie outlives spawn_run. */
static void abandon_child(struct child *c)
{
    if (!c->reaped) {
        (void)kill(c->pid, SIGKILL);
        (void)try_reap(c, true);
    }
}

int spawn_run(const struct spawn_opts *o, struct spawn_result *r, int code, sc_err *err)
{
    memset(r, 0, sizeof *r);
    if (o->argv == NULL || o->argv[0] == NULL) {
        sc_fail(err, code, "cannot run an empty command");
        return -1;
    }

    struct child c = {.o = o, .r = r, .out_fd = -1, .err_fd = -1, .pid_fd = -1};
    c.max_out = o->max_stdout ? o->max_stdout : DEFAULT_MAX_STDOUT;
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    if ((!has_stdout_fd(o) && make_pipe(out_pipe) != 0) || make_pipe(err_pipe) != 0) {
        sc_fail_errno(err, code, "cannot run %s: pipe", o->argv[0]);
        close_fd(&out_pipe[0]);
        close_fd(&out_pipe[1]);
        return -1;
    }
    int rc = start_child(&c, out_pipe, err_pipe);
    c.out_fd = out_pipe[0];
    c.err_fd = err_pipe[0];
    if (rc != 0) {
        close_fd(&c.out_fd);
        close_fd(&c.err_fd);
        errno = rc;
        sc_fail_errno(err, code, "cannot run %s", o->argv[0]);
        return -1;
    }

    c.pid_fd = open_pidfd(c.pid);
    int failed = supervise(&c);
    int saved = errno;
    if (failed)
        abandon_child(&c);
    close_fd(&c.out_fd);
    close_fd(&c.err_fd);
    close_fd(&c.pid_fd);

    /* A last line without '\n' is still a line. */
    if (o->on_stdout_line) {
        if (!failed && !c.overflow && c.out.len > 0)
            o->on_stdout_line(o->ctx, c.out.p, c.out.len);
        c.out.len = 0; /* the lines went to the callback, not the result */
    }
    buf_append(&c.out, "", 0); /* allocated and NUL-terminated in every case */
    buf_append(&c.err, "", 0);
    r->out = c.out.p;
    r->out_len = c.out.len;
    r->err = c.err.p;
    r->err_len = c.err.len;

    if (failed) {
        errno = saved;
        sc_fail_errno(err, code, "%s: lost track of the process", o->argv[0]);
        return -1;
    }
    if (c.overflow) {
        sc_fail(err, code, "%s: output larger than %zu bytes", o->argv[0], c.max_out);
        return -1;
    }
    if (c.data_refused)
        return -1;
    if (c.read_errno != 0) {
        errno = c.read_errno;
        sc_fail_errno(err, code, "%s: cannot read its output", o->argv[0]);
        return -1;
    }
    return 0;
}

void spawn_result_free(struct spawn_result *r)
{
    if (r == NULL)
        return;
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
    r->out_len = r->err_len = 0;
}
