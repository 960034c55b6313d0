/* ipsctl: command-line client of the ips extension (placeholder main, see issue 7). */
#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--help") == 0)
	{
		printf("usage: ipsctl COMMAND [OPTIONS]\n");
		return 0;
	}
	fprintf(stderr, "ipsctl: no command given; try --help\n");
	return 2;
}
