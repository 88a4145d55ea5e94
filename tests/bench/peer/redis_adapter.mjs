// The peer's storage: oidc-provider's example Redis adapter (example/adapters/redis.js in
// panva/node-oidc-provider), with ioredis; the connection URL comes from the caller.
import Redis from 'ioredis';

const grantable = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

const consumable = new Set([
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

function grantKeyFor(id) {
  return `grant:${id}`;
}

function userCodeKeyFor(userCode) {
  return `userCode:${userCode}`;
}

function uidKeyFor(uid) {
  return `uid:${uid}`;
}

function isEmpty(data) {
  return data === null || data === undefined || (typeof data === 'object' && Object.keys(data).length === 0);
}

export default function redisAdapter(url) {
  const client = new Redis(url, { keyPrefix: 'oidc:' });

  return class RedisAdapter {
    constructor(name) {
      this.name = name;
    }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const multi = client.multi();
      if (consumable.has(this.name)) {
        multi.hmset(key, { payload: JSON.stringify(payload) });
      } else {
        multi.set(key, JSON.stringify(payload));
      }

      if (expiresIn) {
        multi.expire(key, expiresIn);
      }

      if (grantable.has(this.name) && payload.grantId) {
        const grantKey = grantKeyFor(payload.grantId);
        multi.rpush(grantKey, key);
        // if you're seeing grant key lists growing out of acceptable proportions consider using
        // LTRIM(grantKey, -n, -1) to keep only the n most recent entries
        const ttl = await client.ttl(grantKey);
        if (expiresIn > ttl) {
          multi.expire(grantKey, expiresIn);
        }
      }

      if (payload.userCode) {
        const userCodeKey = userCodeKeyFor(payload.userCode);
        multi.set(userCodeKey, id);
        multi.expire(userCodeKey, expiresIn);
      }

      if (payload.uid) {
        const uidKey = uidKeyFor(payload.uid);
        multi.set(uidKey, id);
        multi.expire(uidKey, expiresIn);
      }

      await multi.exec();
    }

    async find(id) {
      const data = consumable.has(this.name)
        ? await client.hgetall(this.key(id))
        : await client.get(this.key(id));

      if (isEmpty(data)) {
        return undefined;
      }

      if (typeof data === 'string') {
        return JSON.parse(data);
      }
      const { payload, ...rest } = data;
      return {
        ...rest,
        ...JSON.parse(payload),
      };
    }

    async findByUid(uid) {
      const id = await client.get(uidKeyFor(uid));
      return this.find(id);
    }

    async findByUserCode(userCode) {
      const id = await client.get(userCodeKeyFor(userCode));
      return this.find(id);
    }

    async destroy(id) {
      const key = this.key(id);
      await client.del(key);
    }

    async revokeByGrantId(grantId) {
      const multi = client.multi();
      const tokens = await client.lrange(grantKeyFor(grantId), 0, -1);
      tokens.forEach((token) => multi.del(token));
      multi.del(grantKeyFor(grantId));
      await multi.exec();
    }

    async consume(id) {
      await client.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
    }

    key(id) {
      return `${this.name}:${id}`;
    }

    static async quit() {
      await client.quit();
    }
  };
}
