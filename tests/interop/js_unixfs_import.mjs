// The reference UnixFS importer for p2pkit's tests: js ipfs-unixfs-importer (what Helia uses).
//   node js_unixfs_import.mjs FILE PROFILE     PROFILE: unixfs-v0-2015, unixfs-v1-2025 or helia
// Prints {"cid": "..."}; no network.
import { importer } from 'ipfs-unixfs-importer'
import { MemoryBlockstore } from 'blockstore-core/memory'
import fs from 'fs'

const [file, profile] = process.argv.slice(2)
const options = profile === 'helia' ? {} : { profile }
const content = fs.readFileSync(file)
let root
for await (const entry of importer([{ content }], new MemoryBlockstore(), options)) root = entry
process.stdout.write(JSON.stringify({ cid: root.cid.toString() }) + '\n')
