// The floor of the TAP device itself: the least a userspace responder can do. A blocking read on
// /dev/net/tun, the echo request turned into its reply in place (MACs and addresses swapped, type
// 8 -> 0, checksum patched), one write. ARP requests for 10.0.0.2 are answered so the kernel can
// resolve us. No validation at all: this is a measuring stick, not a stack. Run by
// `npm run bench -- --floors` inside a namespace of its own (it creates tap0 there).
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(void) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) { perror("open /dev/net/tun"); return 1; }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  strncpy(ifr.ifr_name, "tap0", IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) { perror("ioctl(TUNSETIFF)"); return 1; }
  static const unsigned char mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
  static unsigned char f[65600];
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    ssize_t n = read(fd, f, sizeof f);
    if (n < 42) continue;
    if (f[12] == 0x08 && f[13] == 0x06 && f[21] == 1 && f[38] == 10 && f[39] == 0 && f[40] == 0 && f[41] == 2) {
      unsigned char r[42];
      memcpy(r, f + 6, 6);          // to the asker
      memcpy(r + 6, mac, 6);
      r[12] = 0x08; r[13] = 0x06;
      memcpy(r + 14, f + 14, 6);    // htype, ptype, hlen, plen
      r[20] = 0; r[21] = 2;         // reply
      memcpy(r + 22, mac, 6);       // sender: us, 10.0.0.2
      memcpy(r + 28, f + 38, 4);
      memcpy(r + 32, f + 22, 10);   // target: the asker's MAC and address
      if (write(fd, r, sizeof r) < 0) perror("write");
    } else if (f[12] == 0x08 && f[13] == 0x00 && f[23] == 1 && f[34] == 8) {
      unsigned char t[6];
      memcpy(t, f, 6); memcpy(f, f + 6, 6); memcpy(f + 6, t, 6);
      memcpy(t, f + 26, 4); memcpy(f + 26, f + 30, 4); memcpy(f + 30, t, 4);
      f[34] = 0;                    // echo reply; RFC 1624: the checksum grows by 0x0800
      unsigned sum = ((unsigned)(f[36] << 8) | f[37]) + 0x0800;
      sum = (sum & 0xffff) + (sum >> 16);
      f[36] = sum >> 8; f[37] = sum & 0xff;
      if (write(fd, f, (size_t)n) < 0) perror("write");
    }
  }
}
