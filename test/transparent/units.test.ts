/** Transparent mode's pure parts: prefixes, settings, the nft script, the resolver lines, derivation in other ranges. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import { AddressTable } from '../../src/access/service-addresses.ts'
import { nftScript } from '../../src/access/transparent/capture.ts'
import { contains, formatCidr, overlaps, parseCidr } from '../../src/access/transparent/cidr.ts'
import { manualLines } from '../../src/access/transparent/resolver.ts'
import { derivationRanges, transparentSettings } from '../../src/access/transparent/settings.ts'
import { validateConfig } from '../../src/config/load.ts'

const ID = peerIdFromString('12D3KooWLThsyTVpCC3CYxT47CHgK9cYMBc2MwevddvraV3MoQSU')

describe('prefixes', () => {
  it('parses, clears host bits and formats both families', () => {
    assert.equal(formatCidr(parseCidr('100.64.7.9/10')), '100.64.0.0/10')
    assert.equal(formatCidr(parseCidr('fd77:6172:7265:6e00:1::5/64')), 'fd77:6172:7265:6e00::/64')
    assert.equal(formatCidr(parseCidr('10.1.2.3')), '10.1.2.3/32')
    assert.throws(() => parseCidr('10.0.0.0/33'), { message: '"10.0.0.0/33" has no valid prefix length (0-32)' })
    assert.throws(() => parseCidr('nope/8'), { message: '"nope/8" is not an IP prefix (address/length)' })
  })
  it('tells overlap and containment', () => {
    const cgnat = parseCidr('100.64.0.0/10')
    assert.equal(overlaps(cgnat, parseCidr('100.100.0.0/16')), true)
    assert.equal(overlaps(cgnat, parseCidr('100.0.0.0/8')), true)
    assert.equal(overlaps(cgnat, parseCidr('100.128.0.0/10')), false)
    assert.equal(overlaps(cgnat, parseCidr('fd77::/16')), false)
    assert.equal(contains(cgnat, '100.127.255.255'), true)
    assert.equal(contains(parseCidr('fd77:6172:7265:6e00::/64'), 'fd77:6172:7265:6e00:ffff::1'), true)
  })
})

describe('settings', () => {
  it('defaults, the environment switch and configured ranges', () => {
    const off = transparentSettings(validateConfig({}), {})
    assert.equal(off.enabled, false)
    assert.equal(formatCidr(off.ipv4Range), '100.64.0.0/10')
    assert.equal(off.interface, 'warren0')
    assert.equal(transparentSettings(validateConfig({}), { WARREN_TRANSPARENT: '1' }).enabled, true)
    assert.deepEqual(off.users, [process.getuid!()])
    assert.deepEqual(transparentSettings(validateConfig({}), { SUDO_UID: '1234' }).users, [process.getuid!(), 1234])
    const all = transparentSettings(validateConfig({ proxy: { allowOtherUsers: true } }), { SUDO_UID: '1234' })
    assert.equal(all.users, 'all')
    const s = transparentSettings(
      validateConfig({ transparent: { enabled: true, ipv4Range: '10.77.0.0/16', ipv6Range: 'fd00:1:2:3::/64' } }),
      {},
    )
    assert.deepEqual(derivationRanges(s), { v4Base: 0x0a4d0000, v4Size: 65_536, v6Prefix: [0xfd, 0, 0, 1, 0, 2, 0, 3] })
  })
  it('rejects malformed ranges and interface names in config.json', () => {
    assert.throws(
      () =>
        validateConfig({
          transparent: { ipv4Range: 'fd00::/64', ipv6Range: '10.0.0.0/8', interface: 'way-too-long-name0' },
        }),
      {
        code: 'ERR_CONFIG_INVALID',
        details: {
          problems: [
            'transparent.ipv4Range: "fd00::/64" is not an IPv4 prefix /8 to /24 (address/length)',
            'transparent.ipv6Range: "10.0.0.0/8" is not an IPv6 prefix /64 (address/length)',
            'transparent.interface: "way-too-long-name0" is not an interface name (1-15 letters, digits, "_", "." or "-")',
          ],
        },
      },
    )
  })
})

describe('derivation in configured ranges', () => {
  it('hands out addresses in the ranges and maps them back', () => {
    const t = new AddressTable()
    t.useRanges(derivationRanges({ ipv4Range: parseCidr('10.77.0.0/16'), ipv6Range: parseCidr('fd00:1:2:3::/64') }))
    const a = t.addressesOf(ID, 'web')
    assert.ok(contains(parseCidr('10.77.0.0/16'), a.ipv4), a.ipv4)
    assert.ok(a.ipv6.startsWith('fd00:1:2:3:'), a.ipv6)
    assert.deepEqual(t.lookup(a.ipv4), { node: ID.toString(), service: 'web' })
    assert.throws(
      () => t.useRanges(derivationRanges({ ipv4Range: parseCidr('10.0.0.0/8'), ipv6Range: parseCidr('fd00::/64') })),
      {
        message: 'service addresses were handed out before their ranges were set',
      },
    )
  })
  it('keeps the default derivation unchanged', () => {
    const t = new AddressTable()
    assert.deepEqual(t.addressesOf(ID), { ipv4: '100.84.183.185', ipv6: 'fd77:6172:7265:6e00:1335:fc89:9b1:3aa4' })
  })
})

describe('system changes as text', () => {
  it('the nft script creates one table with a redirect per family', () => {
    const script = nftScript(
      {
        interface: 'warren0',
        ipv4Range: parseCidr('100.64.0.0/10'),
        ipv6Range: parseCidr('fd77:6172:7265:6e00::/64'),
        ports: { 4: 40001, 6: 40002 },
        users: [0, 1000],
        log: () => {},
      },
      'warren pid=1 start=2',
    )
    assert.equal(
      script,
      [
        'create table inet warren { comment "warren pid=1 start=2" ; }',
        'add chain inet warren output { type nat hook output priority -100 ; policy accept ; }',
        'add chain inet warren refuse { type filter hook output priority filter ; policy accept ; }',
        'add rule inet warren output ip daddr 100.64.0.0/10 meta l4proto tcp meta skuid { 0, 1000 } redirect to :40001',
        'add rule inet warren refuse ip daddr 100.64.0.0/10 ct direction original meta l4proto tcp reject with tcp reset',
        'add rule inet warren refuse ip daddr 100.64.0.0/10 ct direction original reject',
        'add rule inet warren output ip6 daddr fd77:6172:7265:6e00::/64 meta l4proto tcp meta skuid { 0, 1000 } redirect to :40002',
        'add rule inet warren refuse ip6 daddr fd77:6172:7265:6e00::/64 ct direction original meta l4proto tcp reject with tcp reset',
        'add rule inet warren refuse ip6 daddr fd77:6172:7265:6e00::/64 ct direction original reject',
        '',
      ].join('\n'),
    )
  })
  it('the resolver lines name the DNS server address and port', () => {
    const lines = manualLines('warren0', 'warren', '127.0.0.1:5380')
    assert.ok(lines.includes('dnsmasq (/etc/dnsmasq.d/warren.conf):  server=/warren/127.0.0.1#5380'), lines.join('\n'))
    assert.ok(
      lines[0]!.startsWith(
        "systemd-resolved:  resolvectl dns warren0 127.0.0.1:5380 && resolvectl domain warren0 '~warren'",
      ),
    )
  })
})

describe('destination port in the request header', () => {
  it('travels as extension tag 1 and older frames still decode', async () => {
    const { decodeRequest, encodeRequest, takeFrame } = await import('../../src/services/header.ts')
    const { Uint8ArrayList } = await import('uint8arraylist')
    const bytes = encodeRequest({ service: 'web', port: 443 })
    assert.deepEqual([...bytes], [0x09, 1, 3, 0x77, 0x65, 0x62, 1, 2, 0x01, 0xbb])
    assert.deepEqual(decodeRequest(takeFrame(new Uint8ArrayList(bytes))!), { version: 1, service: 'web', port: 443 })
    assert.deepEqual(decodeRequest(Uint8Array.of(1, 3, 0x77, 0x65, 0x62)), { version: 1, service: 'web' })
    assert.deepEqual(decodeRequest(Uint8Array.of(1, 1, 0x61, 9, 1, 0, 1, 2, 0, 22)), {
      version: 1,
      service: 'a',
      port: 22,
    })
    assert.throws(() => decodeRequest(Uint8Array.of(1, 1, 0x61, 1, 1, 5)), {
      message: 'destination port extension is malformed',
    })
    assert.throws(() => decodeRequest(Uint8Array.of(1, 1, 0x61, 1, 2, 0, 0)), {
      message: 'destination port extension is malformed',
    })
    assert.throws(() => encodeRequest({ service: 'web', port: 70_000 }), {
      message: 'destination port must be 1-65535, got 70000',
    })
  })
})
