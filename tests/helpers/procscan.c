/* procscan: sample /proc/PID/cmdline and /proc/PID/environ of every
 * process, again and again, looking for secrets: the secrets test's eyes.
 *
 *   procscan -n NEEDLES -o OUT -s STOPFILE [-t TIMEOUT_S] [-i INTERVAL_US]
 *
 * NEEDLES: lines "NAME VALUE" (VALUE is the rest of the line). The values
 * never reach any argv: they are read from this file, which is why they
 * are not given on the command line.
 *
 * Every INTERVAL_US (default 2000) until STOPFILE exists (or TIMEOUT_S,
 * default 120), every process but this one is read. Each first sighting
 * of a needle in a process is appended to OUT as
 *   hit needle=NAME where=cmdline|environ pid=P argv0=BASENAME
 * At the end: one line "seen argv0=BASENAME" per program seen (so a test
 * can tell that the processes it cares about were sampled at all, e.g.
 * restic and the hooks), then "scans=N processes=M". Exit 0, or 1 on a
 * usage or system error. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_NEEDLES 32
#define MAX_SEEN 4096
#define MAX_NAMES 512
#define BUF_MAX (1 << 20)

struct needle {
    char name[64];
    char *value;
    size_t len;
};

static struct needle needles[MAX_NEEDLES];
static int nneedles;

/* (pid, where, needle) already reported; and every pid ever looked at */
static struct {
    int pid;
    unsigned mask; /* bit 2*needle + (where == environ) */
} seen[MAX_SEEN];
static int nseen;
static char *names[MAX_NAMES];
static int nnames;
static long processes;

static FILE *out;

static void load_needles(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror("procscan: needles");
        exit(1);
    }
    char line[4096];
    while (fgets(line, sizeof line, f) != NULL && nneedles < MAX_NEEDLES) {
        line[strcspn(line, "\n")] = '\0';
        char *sp = strchr(line, ' ');
        if (sp == NULL || sp[1] == '\0')
            continue;
        *sp = '\0';
        snprintf(needles[nneedles].name, sizeof needles[nneedles].name, "%.63s", line);
        needles[nneedles].value = strdup(sp + 1);
        needles[nneedles].len = strlen(sp + 1);
        nneedles++;
    }
    fclose(f);
    if (nneedles == 0) {
        fprintf(stderr, "procscan: no needles in %s\n", path);
        exit(1);
    }
}

/* The whole file (procfs files report size 0), or -1. */
static ssize_t slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == cap)
            break;
    }
    close(fd);
    return (ssize_t)n;
}

static int slot_for(int pid)
{
    for (int i = 0; i < nseen; i++)
        if (seen[i].pid == pid)
            return i;
    if (nseen == MAX_SEEN)
        return -1;
    seen[nseen].pid = pid;
    seen[nseen].mask = 0;
    processes++;
    return nseen++;
}

static void note_name(const char *argv0)
{
    const char *base = strrchr(argv0, '/');
    base = base ? base + 1 : argv0;
    if (*base == '\0')
        return;
    for (int i = 0; i < nnames; i++)
        if (strcmp(names[i], base) == 0)
            return;
    if (nnames < MAX_NAMES)
        names[nnames++] = strdup(base);
}

static void scan_once(char *cmd, char *env)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return;
    int self = (int)getpid();
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        int pid = atoi(e->d_name);
        if (pid == self)
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        ssize_t nc = slurp(path, cmd, BUF_MAX - 1);
        snprintf(path, sizeof path, "/proc/%s/environ", e->d_name);
        ssize_t ne = slurp(path, env, BUF_MAX - 1);
        if (nc <= 0 && ne > 0) {
            /* Caught in execve: the cmdline read empty while the old image
             * went, the environ is the new one's. Read the cmdline again, so
             * that a hit is not put down to an unknown program ("?"). */
            snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
            nc = slurp(path, cmd, BUF_MAX - 1);
        }
        if (nc <= 0 && ne <= 0)
            continue; /* a kernel thread, or gone */
        if (nc < 0)
            nc = 0;
        if (ne < 0)
            ne = 0;
        cmd[nc] = '\0';
        int slot = slot_for(pid);
        if (nc > 0)
            note_name(cmd);
        for (int k = 0; k < nneedles; k++) {
            for (int where = 0; where < 2; where++) {
                const char *hay = where ? env : cmd;
                size_t len = (size_t)(where ? ne : nc);
                unsigned bit = 1u << (2 * k + where);
                if (memmem(hay, len, needles[k].value, needles[k].len) == NULL)
                    continue;
                if (slot >= 0 && (seen[slot].mask & bit))
                    continue;
                if (slot >= 0)
                    seen[slot].mask |= bit;
                const char *base = strrchr(cmd, '/');
                base = base ? base + 1 : cmd;
                fprintf(out, "hit needle=%s where=%s pid=%d argv0=%s\n", needles[k].name,
                        where ? "environ" : "cmdline", pid, nc > 0 ? base : "?");
                fflush(out);
            }
        }
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    const char *needles_path = NULL, *out_path = NULL, *stop = NULL;
    long timeout_s = 120, interval_us = 2000;
    int opt;
    while ((opt = getopt(argc, argv, "n:o:s:t:i:")) != -1) {
        switch (opt) {
        case 'n':
            needles_path = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 's':
            stop = optarg;
            break;
        case 't':
            timeout_s = atol(optarg);
            break;
        case 'i':
            interval_us = atol(optarg);
            break;
        default:
            fprintf(stderr, "usage: procscan -n NEEDLES -o OUT -s STOPFILE [-t S] [-i US]\n");
            return 1;
        }
    }
    if (needles_path == NULL || out_path == NULL || stop == NULL) {
        fprintf(stderr, "usage: procscan -n NEEDLES -o OUT -s STOPFILE [-t S] [-i US]\n");
        return 1;
    }
    load_needles(needles_path);
    out = fopen(out_path, "a");
    if (out == NULL) {
        perror("procscan: out");
        return 1;
    }
    char *cmd = malloc(BUF_MAX), *env = malloc(BUF_MAX);
    if (cmd == NULL || env == NULL)
        return 1;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long scans = 0;
    for (;;) {
        scan_once(cmd, env);
        scans++;
        if (access(stop, F_OK) == 0)
            break;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > timeout_s)
            break;
        struct timespec ts = {0, interval_us * 1000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < nnames; i++)
        fprintf(out, "seen argv0=%s\n", names[i]);
    fprintf(out, "scans=%ld processes=%ld\n", scans, processes);
    fclose(out);
    return 0;
}
