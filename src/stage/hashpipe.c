#include "hashpipe.h"

#include <string.h>

#include "../core/thread.h"
#include "../core/xalloc.h"

/* The thread: hash buffer 0, 1, 0, 1, ... as the writer fills them, until
 * the writer is closing and the next buffer is not full. */
static void *hash_loop(void *arg)
{
    struct hashpipe *p = arg;
    for (int next = 0;; next ^= 1) {
        pthread_mutex_lock(&p->mu);
        while (!p->full[next] && !p->closing)
            pthread_cond_wait(&p->cv, &p->mu);
        bool work = p->full[next];
        pthread_mutex_unlock(&p->mu);
        if (!work)
            return NULL;
        /* The writer does not touch a full buffer: no lock needed here. */
        crypto_generichash_update(&p->h, p->buf[next], p->len[next]);
        pthread_mutex_lock(&p->mu);
        p->len[next] = 0;
        p->full[next] = false;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

void hashpipe_start(struct hashpipe *p)
{
    memset(p, 0, sizeof *p);
    crypto_generichash_init(&p->h, NULL, 0, crypto_generichash_BYTES_MAX);
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        return;
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        return;
    }
    p->buf[0] = xmalloc(HASHPIPE_BUF);
    p->buf[1] = xmalloc(HASHPIPE_BUF);
    p->threaded = thread_start_quiet(&p->tid, hash_loop, p) == 0;
    if (!p->threaded) {
        free(p->buf[0]);
        free(p->buf[1]);
        p->buf[0] = p->buf[1] = NULL;
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
    }
}

/* Hand the buffer being filled to the thread and move to the other one,
 * waiting until the thread is done with it. */
static void pass_buffer(struct hashpipe *p)
{
    pthread_mutex_lock(&p->mu);
    p->full[p->fill] = true;
    pthread_cond_broadcast(&p->cv);
    p->fill ^= 1;
    while (p->full[p->fill])
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void hashpipe_update(struct hashpipe *p, const void *data, size_t len)
{
    if (!p->threaded) {
        crypto_generichash_update(&p->h, data, len);
        return;
    }
    const unsigned char *d = data;
    while (len > 0) {
        size_t room = HASHPIPE_BUF - p->len[p->fill];
        size_t n = len < room ? len : room;
        memcpy(p->buf[p->fill] + p->len[p->fill], d, n);
        p->len[p->fill] += n;
        d += n;
        len -= n;
        if (p->len[p->fill] == HASHPIPE_BUF)
            pass_buffer(p);
    }
}

/* Let the thread hash what is full (and the partial buffer when flush),
 * then end it. */
static void stop(struct hashpipe *p, bool flush)
{
    if (!p->threaded)
        return;
    pthread_mutex_lock(&p->mu);
    if (flush && p->len[p->fill] > 0)
        p->full[p->fill] = true;
    p->closing = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->tid, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->buf[0]);
    free(p->buf[1]);
    p->buf[0] = p->buf[1] = NULL;
    p->threaded = false;
}

void blake2b_final_hex(crypto_generichash_state *h, char hex[129])
{
    unsigned char digest[crypto_generichash_BYTES_MAX];
    crypto_generichash_final(h, digest, sizeof digest);
    sodium_bin2hex(hex, 129, digest, sizeof digest);
}

void hashpipe_finish(struct hashpipe *p, char hex[129])
{
    stop(p, true);
    blake2b_final_hex(&p->h, hex);
}

void hashpipe_discard(struct hashpipe *p)
{
    stop(p, false);
}
