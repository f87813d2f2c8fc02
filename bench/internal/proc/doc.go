// Package proc samples processes and the machine from Linux's /proc:
// a process's RSS, threads, descriptors and CPU (Stat, RSS, CPU), its TCP
// sockets in a state (CountTCPState), the machine's memory and socket
// slabs (SysMem, ReadSlabCaches), the kernel's TCP counters, and the TCP
// buffer memory (TCPMem), which it reads through the server's own parser,
// server.ReadTCPMemory, so that wsmill and its load tool count the same
// thing. Stop ends a process with SIGTERM and waits, then SIGKILL.
//
// Nothing here blocks except Stop and Sleep; a sample of a process that
// has exited is an error, never a zero.
package proc
