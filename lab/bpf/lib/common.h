/* Constants of the kernel's UAPI headers that vmlinux.h does not carry (they are #defines),
 * shared by every program of the lab. */
#ifndef CALCMESH_LAB_LIB_COMMON_H
#define CALCMESH_LAB_LIB_COMMON_H

#define TC_ACT_UNSPEC (-1)
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define ETH_P_IP 0x0800
#define ETH_HLEN 14
#define AF_INET 2
#define PACKET_HOST 0
#define IP_OFFSET_MASK 0x1fff

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#endif
