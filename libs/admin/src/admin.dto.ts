import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class AdminErrorDto {
  @ApiProperty({ example: 'upstream_rejected' }) code!: string;
  @ApiProperty({
    example: 'The identity provider refused the credentials or scope (invalid_client).',
  })
  message!: string;
  @ApiProperty({ example: '2026-11-27T10:05:00.000Z' }) at!: string;
}

export class AdminClientDto {
  @ApiProperty({ example: 'api-fake-test.client' }) clientId!: string;
  @ApiProperty({ example: 'uat' }) environment!: string;
  @ApiProperty({ description: 'Whether this replica holds a valid token.' }) hasToken!: boolean;
  @ApiPropertyOptional({ example: '2026-11-27T10:20:00.000Z' }) expiresAt?: string;
  @ApiPropertyOptional({
    description: 'Short fingerprint of the held token (never the token).',
    example: '3f2a9c1d',
  })
  tokenFingerprint?: string;
  @ApiPropertyOptional({ example: '2026-11-27T10:00:00.000Z' }) lastRefreshAt?: string;
  @ApiPropertyOptional({ example: '2026-11-27T10:15:00.000Z' }) nextRefreshAt?: string;
  @ApiPropertyOptional({ type: AdminErrorDto }) lastError?: AdminErrorDto;
  @ApiProperty({
    description: 'First 8 hex of an HMAC-SHA-256 of the secret in use (never the secret).',
    example: '9c4e1f0a',
  })
  secretFingerprint!: string;
  @ApiProperty({ description: 'A newer secret was seen and is not yet accepted by the IdP.' })
  secretCandidatePending!: boolean;
  @ApiPropertyOptional({ example: '2026-11-27T09:00:00.000Z' }) lastRotationAt?: string;
  @ApiPropertyOptional({ type: AdminErrorDto, description: 'Why the last new secret was refused.' })
  lastRotationError?: AdminErrorDto;
  @ApiPropertyOptional({
    description:
      'End (notAfter) of the client certificate in use: `certificateFile` (private_key_jwt) or `clientCertFile` (mTLS).',
    example: '2027-11-27T09:00:00.000Z',
  })
  certificateExpiresAt?: string;
}

export class AdminClientsDto {
  @ApiProperty({ type: [AdminClientDto] }) clients!: AdminClientDto[];
}

/** One other replica's answer to a fleet-wide operator action. */
export class FleetReplicaDto {
  @ApiProperty({
    description: 'Host name, process id and a random part.',
    example: 'tv-7d9f-1-3a9c0e1f',
  })
  replica!: string;
  @ApiProperty({
    description:
      'refresh: `dropped` (it held the old token) or `not-held`; reload: `reloaded` or `refused`.',
    example: 'dropped',
  })
  outcome!: string;
  @ApiPropertyOptional({ description: 'Why a reload was refused, or what it loaded.' })
  detail?: string;
}

export class AdminRefreshDto {
  @ApiProperty({ example: 'api-fake-test.client' }) clientId!: string;
  @ApiProperty({ example: 'uat' }) environment!: string;
  @ApiProperty({ example: '2026-11-27T10:20:00.000Z' }) expiresAt!: string;
  @ApiProperty({ example: '3f2a9c1d' }) tokenFingerprint!: string;
  @ApiPropertyOptional({
    description: 'Fingerprint of the token revoked on every replica (absent when none was held).',
    example: '81b0c2de',
  })
  revokedTokenFingerprint?: string;
  @ApiProperty({
    description:
      'Whether the revocation was recorded in Redis, so replicas that missed the message ' +
      '(paused, disconnected) drop the old token before serving it again.',
  })
  revocationDurable!: boolean;
  @ApiProperty({
    type: [FleetReplicaDto],
    description: 'The other replicas that answered within 1 s.',
  })
  replicas!: FleetReplicaDto[];
}

export class AdminReloadDto {
  @ApiProperty() clients!: number;
  @ApiProperty() callers!: number;
  @ApiProperty({ type: [String], example: ['uat/new.client'] }) added!: string[];
  @ApiProperty({ type: [String] }) removed!: string[];
  @ApiProperty({ type: [String], description: 'Clients whose scope, auth method or IdP changed.' })
  changed!: string[];
  @ApiProperty({
    type: [FleetReplicaDto],
    description: 'The other replicas that answered within 1 s, each having read its own files.',
  })
  replicas!: FleetReplicaDto[];
}
