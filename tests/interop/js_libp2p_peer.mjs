// A js-libp2p peer for p2pkit's interop tests: TCP on loopback only, Noise, yamux, identify and
// ping; no bootstrap, no DHT, no mDNS, no relay, no UPnP. Run inside `unshare -n`.
//
//   node js_libp2p_peer.mjs serve SECONDS          listen on 127.0.0.1, print {"listening": [...]},
//                                                   report identify of every peer that connects
//   node js_libp2p_peer.mjs dial MULTIADDR          dial, ping 3 times, print identify and rtts
//
// Output: one JSON document per line on stdout. Bounded: exits after SECONDS (serve) or 20 s.
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'

const [mode, arg] = process.argv.slice(2)
const out = (doc) => process.stdout.write(JSON.stringify(doc) + '\n')
const limit = (mode === 'serve' ? Number(arg) : 20) * 1000
setTimeout(() => { out({ error: 'timeout' }); process.exit(3) }, limit).unref()

const node = await createLibp2p({
  addresses: { listen: mode === 'serve' ? ['/ip4/127.0.0.1/tcp/0'] : [] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: { identify: identify(), ping: ping() }
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
  try {
    const target = multiaddr(arg)
    const rtts = []
    for (let i = 0; i < 3; i++) rtts.push(await node.services.ping.ping(target))
    out({ ping: rtts })
    await new Promise((resolve) => setTimeout(resolve, 500)) // identify runs on connect
  } catch (e) {
    out({ error: String(e && e.message || e) })
    await node.stop()
    process.exit(1)
  }
  await node.stop()
  process.exit(0)
}
