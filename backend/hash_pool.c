#include "hash_pool.h"

#include "log.h"
#include "password.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct job {
    struct job *next;
    char *password, *hash;
    bool ok;
    hash_done_cb *cb;
    void *ctx;
};

static struct ev_loop *pool_loop;
static ev_async done_watcher;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct job *todo_head, *todo_tail;   /* guarded by lock */
static struct job *done_list;               /* guarded by lock */
static int nthreads;

static void job_free(struct job *j)
{
    explicit_bzero(j->password, strlen(j->password));
    free(j->password);
    free(j->hash);
    free(j);
}

static void *worker(void *arg)
{
    for (;;) {
        pthread_mutex_lock(&lock);
        while (!todo_head)
            pthread_cond_wait(&wake, &lock);
        struct job *j = todo_head;
        todo_head = j->next;
        if (!todo_head)
            todo_tail = NULL;
        pthread_mutex_unlock(&lock);

        j->ok = verify_password(j->password, j->hash);

        pthread_mutex_lock(&lock);
        j->next = done_list;
        done_list = j;
        pthread_mutex_unlock(&lock);
        ev_async_send(pool_loop, &done_watcher);
    }
    return NULL;
}

static void on_done(struct ev_loop *loop, ev_async *w, int revents)
{
    pthread_mutex_lock(&lock);
    struct job *list = done_list;
    done_list = NULL;
    pthread_mutex_unlock(&lock);
    while (list) {
        struct job *j = list;
        list = j->next;
        j->cb(j->ok, j->ctx);
        job_free(j);
    }
}

int hash_pool_start(struct ev_loop *loop, int threads)
{
    pool_loop = loop;
    ev_async_init(&done_watcher, on_done);
    ev_async_start(loop, &done_watcher);
    for (int i = 0; i < threads; i++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, worker, NULL);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            log_warn("\"cannot start password thread; checking inline\" error=%d", rc);
            break;
        }
        nthreads++;
    }
    return 0;
}

void hash_pool_verify(const char *password, const char *hash, hash_done_cb *cb, void *ctx)
{
    struct job *j = calloc(1, sizeof *j);
    j->password = strdup(password);
    j->hash = strdup(hash);
    j->cb = cb;
    j->ctx = ctx;
    if (nthreads == 0) {   /* inline, but still answered from the loop */
        j->ok = verify_password(j->password, j->hash);
        pthread_mutex_lock(&lock);
        j->next = done_list;
        done_list = j;
        pthread_mutex_unlock(&lock);
        ev_async_send(pool_loop, &done_watcher);
        return;
    }
    pthread_mutex_lock(&lock);
    if (todo_tail)
        todo_tail->next = j;
    else
        todo_head = j;
    todo_tail = j;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
}
