// A js-libp2p peer for p2pkit's interop tests: TCP on loopback only, Noise, yamux, identify,
// ping and the kad-dht (server mode, /ipfs/kad/1.0.0, loopback addresses kept); no bootstrap,
// no mDNS, no relay, no UPnP. Run inside `unshare -n`.
//
//   node js_libp2p_peer.mjs serve SECONDS          listen on 127.0.0.1, print {"listening": [...]},
//                                                   report identify of every peer that connects
//   node js_libp2p_peer.mjs dial MULTIADDR [CID]    dial, ping 3 times, print identify and rtts;
//                                                   with CID: find its providers through the
//                                                   DHT, then provide a block of our own
//
// Output: one JSON document per line on stdout. Bounded: exits after SECONDS (serve) or 20 s.
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'

const [mode, arg, cidText] = process.argv.slice(2)
const out = (doc) => process.stdout.write(JSON.stringify(doc) + '\n')
const limit = (mode === 'serve' ? Number(arg) : 40) * 1000
setTimeout(() => { out({ error: 'timeout' }); process.exit(3) }, limit).unref()

const node = await createLibp2p({
  addresses: { listen: mode === 'serve' ? ['/ip4/127.0.0.1/tcp/0'] : [] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping(),
    dht: kadDHT({ protocol: '/ipfs/kad/1.0.0', clientMode: false, peerInfoMapper: passthroughMapper })
  }
})

const describe = (detail) => ({
  peer: detail.peerId.toString(),
  agentVersion: detail.agentVersion,
  protocolVersion: detail.protocolVersion,
  protocols: detail.protocols,
  listenAddrs: detail.listenAddrs.map((a) => a.toString()),
  observedAddr: detail.observedAddr ? detail.observedAddr.toString() : null,
  signedPeerRecord: detail.signedPeerRecord != null
})

node.addEventListener('peer:identify', (event) => {
  try {
    out({ identify: describe(event.detail) })
  } catch (e) {
    out({ error: 'describing identify: ' + String(e && e.message || e) })
  }
})

if (mode === 'serve') {
  out({ listening: node.getMultiaddrs().map((a) => a.toString()), id: node.peerId.toString() })
  setTimeout(async () => { await node.stop(); process.exit(0) }, limit - 1000)
} else {
  out({ id: node.peerId.toString() })
  try {
    const target = multiaddr(arg)
    await node.dial(target)
    await new Promise((resolve) => setTimeout(resolve, 500)) // identify runs on connect
    if (cidText) {
      // the DHT first: its routing table checks a new contact with a ping of its own, and
      // js-libp2p allows one outbound ping stream per peer. It adds p2pkit once identify says
      // p2pkit speaks /ipfs/kad/1.0.0 and that ping succeeds.
      const dht = node.services.dht
      for (let i = 0; i < 50 && dht.routingTable.size === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      out({ routing_table: dht.routingTable.size })
      const providers = []
      try {
        for await (const p of dht.findProviders(CID.parse(cidText), { signal: AbortSignal.timeout(10000) })) {
          if (p.name === 'PEER_RESPONSE' || p.name === 'PROVIDER') {
            for (const peer of p.providers ?? []) providers.push({ id: peer.id.toString(), addrs: peer.multiaddrs.map(String) })
          }
          if (providers.length > 0) break // the lookup may go on waiting for more peers
        }
      } catch (e) {
        out({ error: 'findProviders: ' + String(e && e.message || e) })
      }
      out({ providers })
      const block = new TextEncoder().encode('a block js-libp2p provides')
      const ours = CID.createV1(raw.code, await sha256.digest(block))
      const reached = []
      for await (const ev of dht.provide(ours, { signal: AbortSignal.timeout(10000) })) {
        if (ev.name === 'PEER_RESPONSE') reached.push(ev.from.toString())
      }
      out({ provided: ours.toString(), reached })
    }
    const rtts = []
    for (let i = 0; i < 3; i++) {
      rtts.push(await node.services.ping.ping(target))
      // js-libp2p counts a ping stream until the remote's FIN has arrived, which can trail
      // the echo: let it land before the next ping
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    out({ ping: rtts })
  } catch (e) {
    out({ error: String(e && e.message || e) })
    await node.stop()
    process.exit(1)
  }
  await node.stop()
  process.exit(0)
}
