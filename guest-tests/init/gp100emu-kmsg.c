// SPDX-License-Identifier: Apache-2.0
/*
 * gp100emu-kmsg: prints, for the host's console monitor, every kernel log record of level
 * error or worse (KERN_ERR = 3 and below) that appeared since this program last ran, as
 *   gp100emu-kmsg-err: <level> <message>
 * /init runs it before the first suite and after each one, so an error line is attributed to
 * the suite during which it was logged. The console itself does not show a message's level, so
 * without this the host could not tell nouveau's error lines (nvkm_error, dev_err) from its
 * info lines. Records come from /dev/kmsg ("prio,seq,usec,flags;text", see
 * Documentation/ABI/testing/dev-kmsg); the last sequence number seen is kept in
 * /tmp/gp100emu-kmsg.seq. Exit 0 always: a missing /dev/kmsg is reported, not fatal.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEQ_FILE "/tmp/gp100emu-kmsg.seq"

static unsigned long long read_last(void)
{
	unsigned long long v = 0;
	FILE *f = fopen(SEQ_FILE, "r");

	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

int main(void)
{
	char rec[8192];
	unsigned long long last = read_last(), newest = last;
	int printed = 0;
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (fd < 0) {
		printf("gp100emu-kmsg-err: 0 gp100emu-kmsg: cannot open /dev/kmsg: %s\n", strerror(errno));
		return 0;
	}
	for (;;) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);
		unsigned int prio;
		unsigned long long seq;
		char *text;

		if (n < 0 && errno == EPIPE)
			continue; /* records were overwritten before we read them: go on with the next */
		if (n <= 0)
			break; /* EAGAIN: nothing more */
		rec[n] = 0;
		if (sscanf(rec, "%u,%llu,", &prio, &seq) != 2)
			continue;
		text = strchr(rec, ';');
		if (!text)
			continue;
		text++;
		text[strcspn(text, "\n")] = 0; /* continuation lines (" KEY=value") are dropped */
		if (seq > newest)
			newest = seq;
		if ((last && seq <= last) || (prio & 7) > 3)
			continue;
		/* 200 lines per call at most: a storm is summarised by the host, not copied whole */
		if (printed++ < 200)
			printf("gp100emu-kmsg-err: %u %s\n", prio & 7, text);
	}
	if (printed > 200)
		printf("gp100emu-kmsg-err: 0 gp100emu-kmsg: %d more error records not shown\n", printed - 200);
	close(fd);
	FILE *f = fopen(SEQ_FILE, "w");
	if (f) {
		fprintf(f, "%llu\n", newest);
		fclose(f);
	}
	return 0;
}
