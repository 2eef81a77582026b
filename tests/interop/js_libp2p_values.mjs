// A js-libp2p peer for p2pkit's kad-dht value interop: TCP on loopback only, Noise, yamux,
// identify, ping, the kad-dht in server mode (js-libp2p's default validators: /pk/); no
// bootstrap, no mDNS, no relay, no UPnP. Run inside `unshare -n`.
//
//   node js_libp2p_values.mjs MULTIADDR     dial p2pkit, wait until it is in the routing table,
//                                            then obey commands on stdin, one per line:
//     get KEYHEX            -> {"get": KEYHEX, "value": HEX|null, "error": ...}
//     put KEYHEX VALUEHEX   -> {"put": KEYHEX, "reached": [peer ids that echoed it]}
//     put-own-pk            -> the same for /pk/<our id> with our public key
//     ipns DATAHEX PUBKEYHEX SIGHEX
//                           -> an IPNS record's DAG-CBOR data decoded and re-encoded by cborg,
//                              and signatureV2 verified by @libp2p/crypto:
//                              {"ipns": {"fields": {...}, "reencoded": HEX, "signature_ok": bool}}
//     quit
//
// Output: one JSON document per line on stdout. Bounded: exits after 60 s.
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import * as cborg from 'cborg'
import { createInterface } from 'node:readline'

const out = (doc) => process.stdout.write(JSON.stringify(doc) + '\n')
setTimeout(() => { out({ error: 'timeout' }); process.exit(3) }, 60000).unref()
const hex = (bytes) => Buffer.from(bytes).toString('hex')
const unhex = (text) => new Uint8Array(Buffer.from(text, 'hex'))

const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping(),
    dht: kadDHT({ protocol: '/ipfs/kad/1.0.0', clientMode: false, peerInfoMapper: passthroughMapper })
  }
})
const dht = node.services.dht
const ownPkKey = new Uint8Array([...new TextEncoder().encode('/pk/'), ...node.peerId.toMultihash().bytes])

async function put (key, value) {
  const reached = []
  for await (const ev of dht.put(key, value, { signal: AbortSignal.timeout(10000) })) {
    // the PUT_VALUE echo carries the record (the FIND_NODE answers before it do not)
    if (ev.name === 'PEER_RESPONSE' && ev.record != null) reached.push(ev.from.toString())
  }
  return reached
}

try {
  await node.dial(multiaddr(process.argv[2]))
  for (let i = 0; i < 50 && dht.routingTable.size === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  out({ id: node.peerId.toString(), listening: node.getMultiaddrs().map(String),
        routing_table: dht.routingTable.size, own_pk_key: hex(ownPkKey),
        own_pk: hex(publicKeyToProtobuf(node.peerId.publicKey)) })
} catch (e) {
  out({ error: String(e && e.message || e) })
  process.exit(1)
}

for await (const line of createInterface({ input: process.stdin })) {
  const [command, a, b] = line.trim().split(/\s+/)
  try {
    if (command === 'get') {
      let value = null
      for await (const ev of dht.get(unhex(a), { signal: AbortSignal.timeout(10000) })) {
        if (ev.name === 'VALUE') value = hex(ev.value)
      }
      out({ get: a, value })
    } else if (command === 'put') {
      out({ put: a, reached: await put(unhex(a), unhex(b)) })
    } else if (command === 'put-own-pk') {
      out({ put: hex(ownPkKey), reached: await put(ownPkKey, publicKeyToProtobuf(node.peerId.publicKey)) })
    } else if (command === 'ipns') {
      const data = unhex(a)
      const fields = cborg.decode(data)
      const shown = {}
      for (const [k, v] of Object.entries(fields)) {
        shown[k] = v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : String(v)
      }
      const [, , pub, sig] = line.trim().split(/\s+/)
      const signed = new Uint8Array([...new TextEncoder().encode('ipns-signature:'), ...data])
      const ok = await publicKeyFromProtobuf(unhex(pub)).verify(signed, unhex(sig))
      out({ ipns: { fields: shown, keys: Object.keys(fields), reencoded: hex(cborg.encode(fields)), signature_ok: ok } })
    } else if (command === 'quit') {
      break
    }
  } catch (e) {
    out({ command, error: String(e && e.message || e) })
  }
}
await node.stop()
process.exit(0)
