/* crashkill: start a command in a process group of its own, wait for a
 * moment of its life, then SIGKILL it: the crash test's fault injector.
 *
 *   crashkill [-g] [-w WHEN] [-d DELAY_MS] [-s STAGING] [-t TIMEOUT_S] [-o LOG] -- CMD [ARGS...]
 *
 * WHEN (polled every 0.5 ms):
 *   start          as soon as CMD is started (default)
 *   tmp            a .tmp-* entry exists in STAGING (a set is being built)
 *   set            STAGING/sets has more entries than when CMD started
 *   restic:WORD    a process of the group runs restic with WORD among its
 *                  arguments (backup, snapshots, ls, dump, cat, init, ...)
 * then DELAY_MS later: SIGKILL to CMD only, or with -g to the whole group
 * (CMD and its restic: as a power cut or an OOM kill of the cgroup would).
 *
 * Prints one line on stdout describing what the kill interrupted:
 *   killed pgid=P when=W delay=D tmp=0|1 restic=SUB|-
 *   finished pgid=P status=N when=W     (CMD ended before the kill)
 * and exits 0 (1 on a usage or system error, 2 when WHEN never came within
 * TIMEOUT_S, default 60; CMD is then killed too). Without -g, processes
 * of the group may outlive CMD (an orphaned restic): the caller stops them
 * with `kill -KILL -- -P`. CMD's stdout and stderr go to LOG (appended),
 * else they are the helper's. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *staging;
static const char *logfile;

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (prefix == NULL || strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static int count_sets(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/sets", staging);
    return count_entries(path, NULL);
}

/* The first restic subcommand (an argument of WORDS, or any non-option
 * argument when WORD is NULL) run by a process of group pgid, into out. */
static bool restic_in_group(pid_t pgid, const char *word, char *out, size_t outlen)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[8192];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        /* pid (comm) state ppid pgrp ... ; comm may hold spaces or ')' */
        char *rp = strrchr(buf, ')');
        int ppid, pgrp;
        char state;
        if (rp == NULL || sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) != 3 ||
            pgrp != pgid || state == 'Z')
            continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        const char *base = strrchr(buf, '/');
        base = base ? base + 1 : buf;
        if (strcmp(base, "restic") != 0)
            continue;
        for (char *a = buf + strlen(buf) + 1; a < buf + n; a += strlen(a) + 1) {
            if ((word && strcmp(a, word) == 0) || (!word && a[0] != '-')) {
                snprintf(out, outlen, "%s", a);
                found = true;
                break;
            }
        }
    }
    closedir(d);
    return found;
}

static bool moment_came(const char *when, pid_t pgid, int sets_at_start)
{
    char sub[64];
    char tmp_dir[4096];
    if (strcmp(when, "start") == 0)
        return true;
    if (strcmp(when, "tmp") == 0) {
        snprintf(tmp_dir, sizeof tmp_dir, "%s", staging);
        return count_entries(tmp_dir, ".tmp-") > 0;
    }
    if (strcmp(when, "set") == 0)
        return count_sets() > sets_at_start;
    if (strncmp(when, "restic:", 7) == 0)
        return restic_in_group(pgid, when + 7, sub, sizeof sub);
    return false;
}

static void usage(void)
{
    fprintf(stderr, "usage: crashkill [-g] [-w WHEN] [-d DELAY_MS] [-s STAGING] [-t TIMEOUT_S] "
                    "[-o LOG] -- CMD [ARGS...]\n");
    exit(1);
}

int main(int argc, char **argv)
{
    bool group = false;
    const char *when = "start";
    long delay_ms = 0, timeout_s = 60;
    int opt;
    while ((opt = getopt(argc, argv, "+gw:d:s:t:o:")) != -1) {
        switch (opt) {
        case 'g':
            group = true;
            break;
        case 'w':
            when = optarg;
            break;
        case 'd':
            delay_ms = atol(optarg);
            break;
        case 's':
            staging = optarg;
            break;
        case 't':
            timeout_s = atol(optarg);
            break;
        case 'o':
            logfile = optarg;
            break;
        default:
            usage();
        }
    }
    if (optind >= argc)
        usage();
    if (staging == NULL && (strcmp(when, "tmp") == 0 || strcmp(when, "set") == 0))
        usage();
    if (strcmp(when, "start") != 0 && strcmp(when, "tmp") != 0 && strcmp(when, "set") != 0 &&
        strncmp(when, "restic:", 7) != 0)
        usage();
    int sets_at_start = staging ? count_sets() : 0;

    /* A pipe closed on exec tells us the child is in its own group and
     * about to run CMD. */
    int sync[2];
    if (pipe2(sync, O_CLOEXEC) != 0) {
        perror("crashkill: pipe");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("crashkill: fork");
        return 1;
    }
    if (pid == 0) {
        close(sync[0]);
        setpgid(0, 0);
        if (logfile != NULL) {
            int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
                perror("crashkill: log");
                _exit(127);
            }
            close(fd);
        }
        execvp(argv[optind], argv + optind);
        perror("crashkill: exec");
        _exit(127);
    }
    close(sync[1]);
    setpgid(pid, pid); /* either of us may win the race; both set the same */
    char c;
    while (read(sync[0], &c, 1) < 0 && errno == EINTR)
        ;
    close(sync[0]);

    long long deadline = now_us() + timeout_s * 1000000LL;
    int status;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            printf("finished pgid=%d status=%d when=%s\n", (int)pid,
                   WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), when);
            return 0;
        }
        if (moment_came(when, pid, sets_at_start))
            break;
        if (now_us() > deadline) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            printf("timeout pgid=%d when=%s\n", (int)pid, when);
            return 2;
        }
        sleep_us(500);
    }
    if (delay_ms > 0)
        sleep_us(delay_ms * 1000);

    /* What is going on at the moment of the kill, then the kill itself. */
    char sub[64] = "-";
    if (!restic_in_group(pid, NULL, sub, sizeof sub))
        snprintf(sub, sizeof sub, "-");
    int tmp = staging ? count_entries(staging, ".tmp-") > 0 : 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
        printf("finished pgid=%d status=%d when=%s\n", (int)pid,
               WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), when);
        return 0;
    }
    kill(group ? -pid : pid, SIGKILL);
    waitpid(pid, &status, 0);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
        printf("finished pgid=%d status=%d when=%s\n", (int)pid,
               WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), when);
        return 0;
    }
    printf("killed pgid=%d when=%s delay=%ld tmp=%d restic=%s group=%d\n", (int)pid, when,
           delay_ms, tmp, sub, group ? 1 : 0);
    return 0;
}
