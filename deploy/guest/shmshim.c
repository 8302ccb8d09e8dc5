/*
 * hcnode guest: SysV shared-memory stand-in for fio.
 *
 * fio (3.x, Debian build) keeps its job table in a SysV shm segment and
 * gives up ("failed to setup shm segment") when shmget() fails.  Small guest
 * kernels built without CONFIG_SYSVIPC (the PVM test kernel in
 * ../shared/guest-kernel is one) return ENOSYS there.  This LD_PRELOAD
 * library implements the four calls fio uses with MAP_SHARED|MAP_ANONYMOUS
 * memory, which, like an attached SysV segment, stays shared with the
 * children fio forks.  /init preloads it only when /proc/sysvipc is absent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/types.h>

#define MAX_SEGS 64

struct seg {
	void *addr;
	size_t size;
	int used;     /* slot holds a mapping */
	int attached; /* shmat() was called and no shmdt() yet */
	int removed;  /* IPC_RMID seen: unmap at the last detach */
};

static struct seg segs[MAX_SEGS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

int shmget(key_t key, size_t size, int flags)
{
	(void)key;
	(void)flags;
	if (size == 0) {
		errno = EINVAL;
		return -1;
	}
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		errno = ENOMEM;
		return -1;
	}
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_SEGS; i++) {
		if (!segs[i].used) {
			segs[i].addr = p;
			segs[i].size = size;
			segs[i].used = 1;
			segs[i].attached = 0;
			segs[i].removed = 0;
			pthread_mutex_unlock(&lock);
			return i + 1;
		}
	}
	pthread_mutex_unlock(&lock);
	munmap(p, size);
	errno = ENOSPC;
	return -1;
}

static struct seg *find(int id)
{
	if (id < 1 || id > MAX_SEGS || !segs[id - 1].used)
		return NULL;
	return &segs[id - 1];
}

void *shmat(int id, const void *addr, int flags)
{
	(void)flags;
	struct seg *s = find(id);
	if (!s || (addr && addr != s->addr)) {
		errno = EINVAL;
		return (void *)-1;
	}
	s->attached = 1;
	return s->addr;
}

static void release(struct seg *s)
{
	munmap(s->addr, s->size);
	s->used = 0;
}

/*
 * SysV semantics: IPC_RMID only marks the segment; it goes away at the last
 * detach.  fio marks its segments removed right after attaching them.
 * Forked children share the mapping; a detach in a child only unmaps the
 * child's view.
 */
int shmdt(const void *addr)
{
	for (int i = 0; i < MAX_SEGS; i++) {
		if (segs[i].used && segs[i].addr == addr) {
			segs[i].attached = 0;
			if (segs[i].removed)
				release(&segs[i]);
			return 0;
		}
	}
	errno = EINVAL;
	return -1;
}

int shmctl(int id, int cmd, struct shmid_ds *buf)
{
	struct seg *s = find(id);
	if (!s) {
		errno = EINVAL;
		return -1;
	}
	if (cmd == IPC_RMID) {
		s->removed = 1;
		if (!s->attached)
			release(s);
		return 0;
	}
	if (cmd == IPC_STAT && buf) {
		buf->shm_segsz = s->size;
		buf->shm_nattch = 1;
		return 0;
	}
	return 0;
}
