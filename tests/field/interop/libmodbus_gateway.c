/* A Modbus TCP gateway built on libmodbus (not pymodbus): several units behind one port.
 *
 *     libmodbus_gateway IMAGE UNIT:COILS:DISCRETE:HOLDING:INPUTS ...
 *     libmodbus_gateway IMAGE@/dev/pts/N UNIT:COILS:DISCRETE:HOLDING:INPUTS
 *
 * The second form is one Modbus RTU unit on a serial line (libmodbus's RTU server answers one
 * slave id and ignores the others, as a unit on a shared line does); it prints "rtu".
 *
 * Serves each UNIT with the given table sizes (a request past a table's end is answered
 * with exception 2 by libmodbus itself) and answers nothing for a unit it does not have.
 * The tables live in the file IMAGE, mapped shared, one block of 1536 bytes per unit in
 * argument order: coils (256 bytes, one per coil), discrete inputs (256 bytes), holding
 * registers (256 x uint16), input registers (256 x uint16), host byte order; the test reads
 * and writes the same file. Every write request served is logged to IMAGE.writes, one line
 * "UNIT FC ADDRESS VALUE-OR-COUNT". Prints the listening port on stdout, then serves until
 * killed.
 * Built by tests/field/test_interop.py: gcc libmodbus_gateway.c $(pkg-config --cflags
 * --libs libmodbus).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <modbus.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_UNITS 16
#define STRIDE 256
#define UNIT_BYTES (STRIDE * 2 + STRIDE * 2 * 2)

int main(int argc, char **argv)
{
    int n = argc - 2;
    if (n < 1 || n > MAX_UNITS) {
        fprintf(stderr, "usage: %s IMAGE UNIT:COILS:DISCRETE:HOLDING:INPUTS ...\n", argv[0]);
        return 2;
    }
    char *serial = strchr(argv[1], '@');
    if (serial != NULL)
        *serial++ = '\0';
    int image = open(argv[1], O_RDWR);
    if (image < 0 || ftruncate(image, (off_t)n * UNIT_BYTES) != 0) {
        perror(argv[1]);
        return 2;
    }
    uint8_t *mem = mmap(NULL, (size_t)n * UNIT_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, image, 0);
    if (mem == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    int ids[MAX_UNITS];
    modbus_mapping_t maps[MAX_UNITS];
    memset(maps, 0, sizeof maps);
    for (int i = 0; i < n; i++) {
        int c, d, h, r;
        if (sscanf(argv[2 + i], "%d:%d:%d:%d:%d", &ids[i], &c, &d, &h, &r) != 5 || c > STRIDE ||
            d > STRIDE || h > STRIDE || r > STRIDE) {
            fprintf(stderr, "bad unit spec %s\n", argv[2 + i]);
            return 2;
        }
        uint8_t *base = mem + (size_t)i * UNIT_BYTES;
        maps[i].nb_bits = c;
        maps[i].nb_input_bits = d;
        maps[i].nb_registers = h;
        maps[i].nb_input_registers = r;
        maps[i].tab_bits = base;
        maps[i].tab_input_bits = base + STRIDE;
        maps[i].tab_registers = (uint16_t *)(base + 2 * STRIDE);
        maps[i].tab_input_registers = (uint16_t *)(base + 4 * STRIDE);
    }
    char log_path[4096];
    snprintf(log_path, sizeof log_path, "%s.writes", argv[1]);
    FILE *writes = fopen(log_path, "w");
    if (writes == NULL) {
        perror(log_path);
        return 2;
    }
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    if (serial != NULL) {
        modbus_t *rtu = modbus_new_rtu(serial, 115200, 'N', 8, 1);
        if (rtu == NULL || modbus_set_slave(rtu, ids[0]) != 0 || modbus_connect(rtu) != 0) {
            fprintf(stderr, "rtu %s: %s\n", serial, modbus_strerror(errno));
            return 2;
        }
        printf("rtu\n");
        fflush(stdout);
        for (;;) {
            int rc = modbus_receive(rtu, query);
            if (rc > 0) {
                int fc = query[1];
                if (rc >= 6 && (fc == 5 || fc == 6 || fc == 15 || fc == 16)) {
                    fprintf(writes, "%d %d %d %d\n", query[0], fc, query[2] << 8 | query[3],
                            query[4] << 8 | query[5]);
                    fflush(writes);
                }
                modbus_reply(rtu, query, rc, &maps[0]);
            }
        }
    }
    modbus_t *ctx = modbus_new_tcp("127.0.0.1", 0);
    int server = modbus_tcp_listen(ctx, 8);
    if (server < 0) {
        fprintf(stderr, "listen: %s\n", modbus_strerror(errno));
        return 2;
    }
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    getsockname(server, (struct sockaddr *)&addr, &len);
    printf("%d\n", ntohs(addr.sin_port));
    fflush(stdout);

    fd_set all;
    FD_ZERO(&all);
    FD_SET(server, &all);
    int top = server;
    for (;;) {
        fd_set ready = all;
        if (select(top + 1, &ready, NULL, NULL, NULL) < 0) {
            if (errno == EINTR)
                continue;
            perror("select");
            return 1;
        }
        for (int fd = 0; fd <= top; fd++) {
            if (!FD_ISSET(fd, &ready))
                continue;
            if (fd == server) {
                int client = accept(server, NULL, NULL);
                if (client >= 0) {
                    FD_SET(client, &all);
                    if (client > top)
                        top = client;
                }
                continue;
            }
            modbus_set_socket(ctx, fd);
            int rc = modbus_receive(ctx, query);
            if (rc > 0) {
                int unit = query[6]; /* MBAP: transaction, protocol, length, unit */
                for (int i = 0; i < n; i++) {
                    if (ids[i] == unit) {
                        int fc = query[7];
                        if (rc >= 12 && (fc == 5 || fc == 6 || fc == 15 || fc == 16)) {
                            fprintf(writes, "%d %d %d %d\n", unit, fc, query[8] << 8 | query[9],
                                    query[10] << 8 | query[11]);
                            fflush(writes);
                        }
                        modbus_reply(ctx, query, rc, &maps[i]);
                        break;
                    }
                }
            } else if (rc < 0) {
                close(fd);
                FD_CLR(fd, &all);
            }
        }
    }
}
