// s3rver ships no types: the part of its API the test support uses.
declare module "s3rver" {
  import type { AddressInfo } from "node:net"
  interface S3rverOptions {
    readonly address?: string
    readonly port?: number
    readonly directory: string
    readonly silent?: boolean
    readonly resetOnClose?: boolean
    readonly configureBuckets?: ReadonlyArray<{ readonly name: string }>
  }
  class S3rver {
    constructor(options: S3rverOptions)
    run(): Promise<AddressInfo>
    close(): Promise<void>
  }
  export default S3rver
}
